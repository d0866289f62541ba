"""One POST to a callback receiver, bounded as a whole and sent only to a vetted address.

- **A total deadline.** `requests`' timeout is per socket read, so a
  receiver that trickles a byte every few seconds held a POST open for
  ever. Here a watchdog shuts the socket down when `deadline_seconds` have
  passed since the call began, whatever stage it is in (connecting, the TLS
  handshake, sending, the status line, the headers), which wakes any
  blocked read. Only the status line and headers are read; the body is not.
- **The vetted address, not the name again.** The host is resolved and
  vetted (`addresses.py`) just before connecting, and the socket connects
  to that address: a DNS answer that changed since the URL was accepted
  cannot point the POST inside. The request still carries the URL's host
  in `Host` and, for https, in SNI and the certificate check.
- **No redirects.** http.client never follows one; a 3xx is an answer like
  any other non-2xx, so no body or signature is re-sent elsewhere.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from urllib.parse import urlsplit

from docqueue.callbacks.addresses import Address, AddressRefused, vetted_addresses
from docqueue.callbacks.urls import default_port


class NotDelivered(Exception):
    """The POST got no HTTP answer: refused address, connection failure, deadline. The detail is for the log only."""


class _Watchdog:
    """Shuts a connection's socket down once its deadline passes, so no read can block past it."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is None:
            return
        try:
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would try a TLS close from this thread.
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed or never connected

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _connect(addresses: list[Address], port: int, seconds: float, watchdog: _Watchdog) -> socket.socket:
    last_error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(seconds)
        watchdog.watch(sock)
        try:
            sock.connect((str(address), port))
            return sock
        except OSError as error:
            sock.close()
            last_error = error
    raise last_error or OSError("no address to connect to")


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to the host named in the URL, made to addresses vetted beforehand."""

    def __init__(self, host, port, *, addresses, tls, seconds, watchdog) -> None:
        super().__init__(host, port, timeout=seconds)
        self._addresses = addresses
        self._tls = tls
        self._watchdog = watchdog

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout, self._watchdog)
        if self._tls:
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
            self._watchdog.watch(sock)
            self.sock = sock
            sock.do_handshake()
        self.sock = sock


def post(url: str, body: bytes, headers: dict[str, str], *, deadline_seconds: float, allowed_hosts) -> int:
    """POST `body` to `url` and return the answer's status code, all within `deadline_seconds`.

    NotDelivered when there is no answer in time or the host may not be sent to.
    """
    parts = urlsplit(url)
    port = parts.port or default_port(parts.scheme)
    try:
        addresses = vetted_addresses(parts.hostname or "", port, allowed_hosts)
    except AddressRefused as refused:
        raise NotDelivered(f"address refused: {refused}") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with _Watchdog(deadline_seconds) as watchdog:
        connection = _PinnedConnection(
            parts.hostname,
            port,
            addresses=addresses,
            tls=parts.scheme == "https",
            seconds=deadline_seconds,
            watchdog=watchdog,
        )
        try:
            connection.request("POST", target, body=body, headers={**headers, "Connection": "close"})
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as error:
            reason = f"no answer within {deadline_seconds} s" if watchdog.fired else repr(error)
            raise NotDelivered(reason) from None
        finally:
            connection.close()
        if watchdog.fired:
            # The status arrived, but the deadline passed while it did: not an answer in time.
            raise NotDelivered(f"no answer within {deadline_seconds} s")
        return status
