"""PdfPoolLifecycle: start and stop the worker process's PDF pool with the worker."""

from __future__ import annotations

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from docqueue.runtime.pdf_processes import shutdown_pdf_pool, warm_pdf_pool


class PdfPoolLifecycle(Middleware):
    """Middleware that starts the PDF processes with the worker, so the first
    documents do not wait for them, and stops them when the worker shuts
    down, so a deploy leaves no orphaned MuPDF processes behind."""

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))

    def after_worker_boot(self, broker, worker):
        self.logger.debug("Starting the PDF process pool...")
        warm_pdf_pool()

    def after_worker_shutdown(self, broker, worker):
        self.logger.debug("Stopping the PDF process pool...")
        shutdown_pdf_pool()
