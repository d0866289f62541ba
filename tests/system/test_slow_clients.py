"""Slow clients against the Procfile's real web process, over real sockets.

Thirty connections that send their headers a byte at a time must not stall
a normal request; a client that stops sending its headers or its body is
cut off after WEB_HEADER_TIMEOUT_SECONDS / WEB_BODY_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import socket
import threading
import time

import requests

from tests.support.api import Api, create_admin_with_cli
from tests.support.factories import make_pdf
from tests.support.processes import free_port, wait_for_web

SLOW_CLIENTS = 30


def open_slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that have sent a request line and then only trickle header bytes."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=60)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        clients.append(client)
    return clients


def trickle(clients: list[socket.socket], stop: threading.Event) -> None:
    """One header byte per client every half second, never finishing the headers."""
    while not stop.wait(0.5):
        for client in clients:
            try:
                client.sendall(b"a")
            except OSError:
                pass  # cut off by the server: that is its header timeout at work


def closed_by_server(client: socket.socket) -> bytes:
    """What the server sent before closing the connection (b"" for a silent close)."""
    received = b""
    while True:
        try:
            chunk = client.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def start_web_with(procfile, **env) -> tuple[str, int]:
    port = free_port()
    procfile("web", PORT=port, WEB_CONCURRENCY=2, **env)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    return base_url, port


def test_thirty_slow_clients_do_not_stall_a_normal_request(procfile, test_env):
    base_url, port = start_web_with(procfile)
    api = Api(base_url, create_admin_with_cli(test_env))
    clients = open_slow_clients(port, SLOW_CLIENTS)
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(clients, stop), daemon=True)
    trickler.start()
    try:
        time.sleep(1)  # every slow client is connected and trickling
        started = time.monotonic()
        # Before: gunicorn gthread (2 processes x 4 threads) gave no answer within 5 s.
        assert requests.get(f"{base_url}/healthz", timeout=5).status_code == 200
        document_id = api.upload("during-slow-clients.pdf", make_pdf(["still served"]))
        assert api.get(f"/api/documents/{document_id}")["filename"] == "during-slow-clients.pdf"
        print(f"normal requests answered in {time.monotonic() - started:.2f} s beside {SLOW_CLIENTS} slow clients")
    finally:
        stop.set()
        trickler.join()
        for client in clients:
            client.close()


def test_clients_that_stop_sending_are_cut_off(procfile, test_env):
    _, port = start_web_with(procfile, WEB_HEADER_TIMEOUT_SECONDS=2, WEB_BODY_TIMEOUT_SECONDS=2)
    token = create_admin_with_cli(test_env)
    stalled_headers = socket.create_connection(("127.0.0.1", port), timeout=60)
    stalled_headers.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: a")
    stalled_body = socket.create_connection(("127.0.0.1", port), timeout=60)
    stalled_body.sendall(
        b"POST /api/documents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + token.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n--xyz\r\n"
    )
    # The socket timeouts (60 s) are only this test's patience; the server must close well before.
    started = time.monotonic()
    assert closed_by_server(stalled_headers) == b""
    print(f"stalled headers cut off after {time.monotonic() - started:.1f} s")
    answer = closed_by_server(stalled_body)
    print(f"stalled body cut off after {time.monotonic() - started:.1f} s")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:300]
