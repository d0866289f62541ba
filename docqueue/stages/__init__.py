"""The processing stages as plain functions.

Each stage module has `run(path, claim)`, which does the PyMuPDF work in a
PDF pool process and returns a small summary, and `record(session, claim,
summary)`, which the worker calls in the transaction that hands the job on.
"""
