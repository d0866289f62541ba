"""What `docqueue up` needs on one machine: embedded servers, the Procfile processes, their state and cleanup.

Nothing here runs in a deployment; tests and benchmarks use `scratch` and `procfile`.
"""
