"""Gunicorn settings for the Procfile's web process: serving that slow clients cannot stall.

With threads, each connection holds a thread while its client sends
headers, so a dozen slow clients stalled gunicorn's 2 × 4 threads. Gevent
workers hold a cheap greenlet per connection instead (up to
`worker_connections` each), and the app's I/O cooperates: psycopg 3 waits
with gevent-patched `select`, redis-py and SQLAlchemy's pool use patched
sockets and locks. A client must send its request line and headers within
WEB_HEADER_TIMEOUT_SECONDS (gunicorn bounds each request's header read by
`keepalive` in gevent workers) and must not pause longer than
WEB_BODY_TIMEOUT_SECONDS while sending its body (a socket timeout).

Gunicorn reads this file in its master before any worker starts; the app
is imported only in workers, after gevent has patched the standard library.
"""

from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from docqueue.settings import get_settings

_settings = get_settings()


class SlowClientSafeWorker(GeventWorker):
    """Gevent's worker with a timeout on every read and write of a client's socket."""

    def handle(self, listener, client, addr):
        client.settimeout(_settings.web_body_timeout_seconds)
        # GeventWorker.handle would put the socket back into blocking mode (no timeout): skip to its parent's.
        AsyncWorker.handle(self, listener, client, addr)


worker_class = SlowClientSafeWorker
worker_connections = 1000
keepalive = _settings.web_header_timeout_seconds
# Gunicorn's default control socket is one per user (~/.gunicorn/gunicorn.ctl): every server of the user
# would share it, the last started owning it and any stop removing it. `docqueue up` gives each its own.
if _settings.web_control_socket:
    control_socket = _settings.web_control_socket
