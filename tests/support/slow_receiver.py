"""Hostile callback receivers on real sockets: one that trickles its answer, one that hangs until released.

`SlowReceiver` reads each request whole, then either trickles (the status
line, then one byte of an endless header every `interval` seconds, as the
tester's receiver did) or hangs (answers nothing until `release` is set,
then 200). It counts requests and how many were open at once.
"""

from __future__ import annotations

import socket
import threading
import time


class SlowReceiver:
    def __init__(self, mode: str, interval: float = 1.0, trickle_for: float = 120.0) -> None:
        assert mode in ("trickle", "hang")
        self.mode = mode
        self.interval = interval
        self.trickle_for = trickle_for
        self.release = threading.Event()
        self.requests = 0
        self.open_now = 0
        self.most_open = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._closed = threading.Event()
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _read_request(self, connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        while len(body) < length:
            body += connection.recv(65536)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                self._read_request(connection)
                with self._lock:
                    self.requests += 1
                    self.open_now += 1
                    self.most_open = max(self.most_open, self.open_now)
                if self.mode == "trickle":
                    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    ends = time.monotonic() + self.trickle_for
                    while time.monotonic() < ends and not self._closed.is_set():
                        connection.sendall(b"a")
                        time.sleep(self.interval)
                else:
                    self.release.wait(120)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass  # the sender gave up on us: that is the point
            finally:
                with self._lock:
                    self.open_now -= 1

    def close(self) -> None:
        self._closed.set()
        self.release.set()
        self._server.close()
