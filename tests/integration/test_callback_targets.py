"""Callback URLs cannot turn the worker against the service: no internal addresses, no redirects, no port scans.

The receivers are real servers on loopback, which the tests allow with
CALLBACK_ALLOWED_HOSTS=127.0.0.1 (conftest) unless a test takes it away.
"""

from __future__ import annotations

import io
import socket
import threading

import pytest
import sqlalchemy as sa

from docqueue.callbacks.sender import NOT_DELIVERED, deliver_due
from tests.support.api import auth
from tests.support.callbacks import delivery, ended_run_with_callback, settings_for_test
from tests.support.factories import make_pdf
from tests.support.processes import free_port, wait_until
from tests.support.service_stub import ServiceStub, start_stub
from tests.support.slow_receiver import SlowReceiver


@pytest.fixture
def configure(monkeypatch):
    yield from settings_for_test(monkeypatch)


REFUSED_ADDRESS = (
    "callback_url cannot be used: its host is a private, loopback, link-local, multicast or reserved address, "
    "which docqueue does not send callbacks to"
)


@pytest.mark.parametrize(
    "url, error",
    [
        ("http://127.0.0.1:8000/admin", REFUSED_ADDRESS),
        ("http://localhost:6379/", REFUSED_ADDRESS),
        ("http://[::1]/hook", REFUSED_ADDRESS),
        ("http://2130706433/hook", REFUSED_ADDRESS),  # 127.0.0.1 as one number
        ("http://0x7f.1/hook", REFUSED_ADDRESS),
        ("http://169.254.169.254/latest/meta-data/", REFUSED_ADDRESS),
        ("http://10.1.2.3/hook", REFUSED_ADDRESS),
        ("http://192.168.0.1/hook", REFUSED_ADDRESS),
        ("http://100.64.0.1/hook", REFUSED_ADDRESS),  # carrier-grade NAT
        ("http://0.0.0.0:8000/", REFUSED_ADDRESS),
        ("http://224.0.0.1/hook", REFUSED_ADDRESS),
        ("http://240.0.0.1/hook", REFUSED_ADDRESS),
        ("http://[::ffff:127.0.0.1]/hook", REFUSED_ADDRESS),
        ("http://[2002:7f00:1::]/hook", REFUSED_ADDRESS),  # 6to4 around 127.0.0.1
        ("http://[fe80::1]/hook", REFUSED_ADDRESS),
        ("http://[fc00::1]/hook", REFUSED_ADDRESS),
        ("http://user:pass@93.184.215.14/hook", "callback_url must not contain a user name or password"),
        ("http://93.184.215.14:0/hook", "callback_url's port must be from 1 to 65535"),
        ("http://no-such-host.invalid/hook", "callback_url cannot be used: its host name could not be resolved"),
    ],
)
def test_an_internal_callback_url_is_refused_on_upload_and_as_the_users_own(
    client, make_user, session, configure, url, error
):
    configure(CALLBACK_ALLOWED_HOSTS="")
    _, token = make_user()
    response = client.post(
        "/api/documents",
        data={"file": (io.BytesIO(make_pdf(["x"])), "doc.pdf"), "callback_url": url},
        headers=auth(token),
        content_type="multipart/form-data",
    )
    assert (response.status_code, response.json) == (400, {"error": error})
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 0
    own = client.put("/api/me/callback", json={"callback_url": url}, headers=auth(token))
    assert (own.status_code, own.json) == (400, {"error": error})
    assert client.get("/api/me/callback", headers=auth(token)).json["callback_url"] is None


def test_a_public_address_is_accepted_and_an_operator_can_allow_an_internal_network(client, make_user, configure):
    configure(CALLBACK_ALLOWED_HOSTS="")
    _, token = make_user()
    public = client.put("/api/me/callback", json={"callback_url": "https://93.184.215.14/hook"}, headers=auth(token))
    assert (public.status_code, public.json["callback_url"]) == (200, "https://93.184.215.14/hook")
    refused = client.put("/api/me/callback", json={"callback_url": "http://10.1.2.3/hook"}, headers=auth(token))
    assert refused.status_code == 400
    configure(CALLBACK_ALLOWED_HOSTS="10.0.0.0/8, hooks.internal")
    allowed = client.put("/api/me/callback", json={"callback_url": "http://10.1.2.3/hook"}, headers=auth(token))
    assert (allowed.status_code, allowed.json["callback_url"]) == (200, "http://10.1.2.3/hook")
    still_refused = client.put("/api/me/callback", json={"callback_url": "http://192.168.1.1/"}, headers=auth(token))
    assert still_refused.status_code == 400


def test_the_address_is_checked_again_when_the_worker_connects(make_user, session, receiver, configure):
    # The URL was accepted when given; by the time of the POST its host is one callbacks may not reach
    # (as after a DNS change): the worker does not connect at all.
    user_id, _ = make_user()
    delivery_id = ended_run_with_callback(session, user_id, receiver.url + "/hook")
    configure(CALLBACK_ALLOWED_HOSTS="")
    assert deliver_due() == 1
    assert receiver.requests == []
    row = delivery(session, delivery_id)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("pending", 1, None, NOT_DELIVERED)


def test_a_redirect_is_not_followed(make_user, session, configure):
    elsewhere = ServiceStub()
    elsewhere_url, elsewhere_server = start_stub(elsewhere)
    redirecting = ServiceStub(default=(307, {"Location": elsewhere_url + "/admin/users"}, b""))
    redirecting_url, redirecting_server = start_stub(redirecting)
    try:
        user_id, _ = make_user()
        temporary = ended_run_with_callback(session, user_id, redirecting_url + "/hook")
        assert deliver_due() == 1
        redirecting.default = (302, {"Location": elsewhere_url + "/admin/users"}, b"")
        session.execute(sa.text("UPDATE callback_deliveries SET next_attempt_at = now()"))
        session.commit()
        assert deliver_due() == 1
        assert len(redirecting.requests) == 2
        assert elsewhere.requests == []
        row = delivery(session, temporary)
        assert (row.status, row.last_status_code) == ("pending", 302)
        assert row.last_error == "the callback URL answered HTTP 302 (redirects are not followed)"
    finally:
        elsewhere_server.shutdown()
        redirecting_server.shutdown()


def _silent_server() -> tuple[str, socket.socket]:
    """A port that accepts connections and never says anything."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/", server


def _not_http_server() -> tuple[str, socket.socket]:
    """A port that answers like Redis would: not HTTP."""
    server = socket.create_server(("127.0.0.1", 0))

    def accept():
        while True:
            try:
                connection = server.accept()[0]
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"-ERR unknown command 'POST'\r\n")

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/", server


def test_a_closed_a_silent_and_a_non_http_port_look_the_same_to_the_user(make_user, session, configure):
    configure(CALLBACK_TIMEOUT_SECONDS="2", CALLBACK_USER_IN_FLIGHT="3")
    silent_url, silent = _silent_server()
    not_http_url, not_http = _not_http_server()
    try:
        user_id, _ = make_user()
        ids = [
            ended_run_with_callback(session, user_id, url)
            for url in (f"http://127.0.0.1:{free_port()}/", silent_url, not_http_url)
        ]
        assert deliver_due() == 3
        shown = {(delivery(session, i).last_status_code, delivery(session, i).last_error) for i in ids}
        assert shown == {(None, NOT_DELIVERED)}
    finally:
        silent.close()
        not_http.close()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(make_user, session, configure):
    # The tester's receiver: the status line, then a byte every second. requests' per-read timeout never fired.
    configure(CALLBACK_TIMEOUT_SECONDS="2")
    trickler = SlowReceiver("trickle", interval=1.0, trickle_for=300)
    try:
        user_id, _ = make_user()
        delivery_id = ended_run_with_callback(session, user_id, trickler.url)
        sender = threading.Thread(target=deliver_due, daemon=True)
        sender.start()
        # Far more than the 2 s deadline, far less than the 300 s the receiver would trickle for.
        wait_until(lambda: not sender.is_alive(), timeout=60, message="the POST to end at its deadline")
        row = delivery(session, delivery_id)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, NOT_DELIVERED)
        assert trickler.requests == 1
    finally:
        trickler.close()
