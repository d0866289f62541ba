"""The processing stages, one module each.

Each module declares `STAGE` (see `stage.py`): its `run`, which does the
work (PyMuPDF work in a PDF pool process, imported there only, so the web
and clock never pay for PyMuPDF), and its `record`, which the worker calls
in the transaction that hands the job on.
"""
