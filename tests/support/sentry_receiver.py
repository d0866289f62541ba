"""A local HTTP server standing in for Sentry: it accepts envelopes and keeps their events."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class SentryReceiver:
    """Listens on 127.0.0.1; `dsn` points an SDK at it; `events` are the events received, in order."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._receive(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server.server_address[1]}/1"

    def _receive(self, envelope: bytes) -> None:
        # An envelope is a header line, then (item header, payload) line pairs.
        lines = envelope.split(b"\n")
        index = 1
        while index + 1 < len(lines):
            header = json.loads(lines[index] or b"{}")
            payload = lines[index + 1]
            index += 2
            if header.get("type") == "event":
                with self.lock:
                    self.events.append(json.loads(payload))

    def texts(self) -> list[str]:
        """Each event as one line: its message, or its exception's type and value."""
        with self.lock:
            events = list(self.events)
        texts = []
        for event in events:
            message = event.get("message") or (event.get("logentry") or {}).get("message")
            if message:
                texts.append(message)
            for exception in (event.get("exception") or {}).get("values", []):
                texts.append(f"{exception.get('type')}: {exception.get('value')}")
        return texts

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
