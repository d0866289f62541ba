"""A real HTTP server on a real socket standing in for an outside service (embeddings, chat, a callback URL).

Each test scripts its answers: `answers` is a list of (status, headers, body)
taken in order, then `default` for every later request, each after `delay`
seconds. Every request is recorded (time, path, headers, raw body).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    at: float
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def embeddings_answer(inputs: list, dims: int = 4) -> dict:
    """A well-formed `/v1/embeddings` answer: input i gets vector [i, len(input), 1, ...]."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [float(i), float(len(text))] + [1.0] * (dims - 2)}
            for i, text in enumerate(inputs)
        ],
        "model": "stub",
    }


def chat_answer(content: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


@dataclass
class ServiceStub:
    """Scriptable answers; by default a real-looking answer for the path asked."""

    answers: list = field(default_factory=list)
    default: tuple | None = None
    #: Seconds each request waits before it is answered: a slow service.
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self, path: str, body: bytes) -> tuple[int, dict, bytes]:
        with self.lock:
            scripted = self.answers.pop(0) if self.answers else self.default
        if scripted is not None:
            status, headers, payload = scripted
            return status, headers, payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if path.endswith("/embeddings"):
            return 200, {}, json.dumps(embeddings_answer(json.loads(body)["input"])).encode()
        if path.endswith("/chat/completions"):
            content = json.loads(body)["messages"][0]["content"]
            about = "an image" if isinstance(content, list) else "the text"
            return 200, {}, json.dumps(chat_answer(f"stub answer about {about}")).encode()
        return 200, {}, b"{}"


def start_stub(stub: ServiceStub) -> tuple[str, ThreadingHTTPServer]:
    """Serve `stub` on 127.0.0.1 on a free port; return its base URL and the server (shut it down after)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with stub.lock:
                stub.requests.append(Recorded(time.monotonic(), self.path, dict(self.headers), body))
            time.sleep(stub.delay)
            status, headers, payload = stub.answer_for(self.path, body)
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server
