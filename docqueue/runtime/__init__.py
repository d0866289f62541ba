"""What a running stage may ask of the process it runs in: its lease, its deadline, the shutdown
flag, memory, its identity, and the pool of PDF processes with the guard inside each.

Everything here is below the stages: it knows no stage, no pipeline and no queue.
"""
