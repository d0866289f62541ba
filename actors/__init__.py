"""Dramatiq actors, one per pipeline stage (see `stages.py`). Run with `dramatiq actors`.

The broker and its middleware are set up here, before any actor module is
imported, so the actors see every option the middleware declares.
"""

from actors.middleware.connection_role import ConnectionRole
from actors.middleware.graceful_handback import GracefulHandback
from actors.middleware.io_lane_cap import IoLaneCap
from actors.middleware.lease_heartbeat import LeaseHeartbeat
from actors.middleware.memory_guard import MemoryGuard
from actors.middleware.pdf_pool_lifecycle import PdfPoolLifecycle
from actors.middleware.sigterm_once import SigtermOnce
from actors.middleware.worker_recycle import WorkerRecycle
from docqueue.broker import build_broker
from docqueue.observability import configure_logging
from docqueue.skipped_messages import quiet_skipped_messages

configure_logging()
quiet_skipped_messages()
broker = build_broker(
    [
        ConnectionRole(),
        SigtermOnce(),
        MemoryGuard(),
        IoLaneCap(),
        LeaseHeartbeat(),
        GracefulHandback(),
        PdfPoolLifecycle(),
        WorkerRecycle(),
    ]
)

from actors.callbacks import deliver_callbacks  # noqa: E402
from actors.ocr_ranges import ocr_range  # noqa: E402
from actors.stages import STAGE_ACTORS  # noqa: E402  (after the middleware, on purpose)

__all__ = ["STAGE_ACTORS", "broker", "deliver_callbacks", "ocr_range"]
