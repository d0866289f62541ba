"""OCR: Tesseract run as a subprocess per page (`tesseract.py`), and pages rendered and read in a PDF pool process (`pages.py`)."""
