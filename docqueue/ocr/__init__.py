"""OCR: the `tesseract` command on one page image (`tesseract.py`), and pages read in a PDF pool process (`pages.py`)."""
