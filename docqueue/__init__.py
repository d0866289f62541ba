"""docqueue: durable document processing shared by the web and the workers.

Nothing in this package imports `web` or `actors`.
"""

import sys

# PyMuPDF 2.0 imports its optional layout analyser at `import pymupdf` (onnxruntime, numpy and an ONNX
# model: ~140 MB of memory and ~350 MB of address space per process, which a PDF process's RLIMIT_AS
# must then hold) and pymupdf4llm. docqueue uses neither; pymupdf treats a failed import of them as
# "not installed", and a None in sys.modules makes the import fail.
for _optional in ("pymupdf.layout", "pymupdf4llm"):
    sys.modules.setdefault(_optional, None)
