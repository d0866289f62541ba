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

A request gunicorn refuses itself, before the app sees it (a request
line over `limit_request_line`, 4094 bytes; a header over
`limit_request_field_size`, 8190 bytes; a control character such as
`\x7f` in a header value), is answered with a JSON `{"error": ...}`, not
gunicorn's HTML page: at that point gunicorn has not read (or not
trusted) the path, so it cannot tell an `/api` request from a page, and
every `/api` answer must be JSON. A browser shows the JSON as text.

Gunicorn reads this file in its master before any worker starts; the app
is imported only in workers, after gevent has patched the standard library.
"""

import json

from gunicorn import util
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


def write_json_error(sock, status_int, reason, mesg):
    """Gunicorn's own error answer (a request it refused before the app), as JSON `{"error": ...}`."""
    body = json.dumps({"error": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# The workers' `handle_error` writes through `gunicorn.util.write_error`, and offers no other hook for the body.
util.write_error = write_json_error

worker_class = SlowClientSafeWorker
worker_connections = 1000
keepalive = _settings.web_header_timeout_seconds
# Gunicorn's default control socket is one per user (~/.gunicorn/gunicorn.ctl): every server of the user
# would share it, the last started owning it and any stop removing it. `docqueue up` gives each its own.
if _settings.web_control_socket:
    control_socket = _settings.web_control_socket
