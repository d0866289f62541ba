"""Callback signatures carry a timestamp (no replay), and a user can rotate the secret without breaking receivers.

The receiver's check below is the one the README documents.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import sqlalchemy as sa
from click.testing import CliRunner

from docqueue.callbacks.sender import deliver_due
from tests.support.accounts import PASSWORD
from tests.support.api import auth
from tests.support.callbacks import ended_run_with_callback

TOLERANCE_SECONDS = 300


def verify(header: str, body: bytes, secret: str, now: float) -> bool:
    """A receiver's check: some v1 matches HMAC(secret, "t.body") and t is within the tolerance."""
    fields = [field.split("=", 1) for field in header.split(",")]
    timestamps = [value for key, value in fields if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        return False
    if abs(now - int(timestamps[0])) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, value) for key, value in fields if key == "v1")


def test_the_signature_covers_a_timestamp_so_a_captured_delivery_cannot_be_replayed_later(
    client, make_user, session, receiver
):
    user_id, token = make_user()
    secret = client.get("/api/me/callback", headers=auth(token)).json["secret"]
    ended_run_with_callback(session, user_id, receiver.url + "/hook")
    assert deliver_due() == 1
    (sent,) = receiver.requests
    header = sent.headers["X-Docqueue-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert verify(header, sent.body, secret, time.time())
    # Replayed six minutes later, the same bytes are refused; a fresher t= does not match the signature.
    assert not verify(header, sent.body, secret, time.time() + 360)
    fresher = re.sub(r"t=\d+", f"t={int(time.time()) + 360}", header)
    assert not verify(fresher, sent.body, secret, time.time() + 360)
    assert not verify(header, sent.body.replace(b"completed", b"failed"), secret, time.time())


def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(client, make_user, session, receiver):
    user_id, token = make_user()
    old = client.get("/api/me/callback", headers=auth(token)).json["secret"]
    rotated = client.post("/api/me/callback/rotate-secret", headers=auth(token))
    assert rotated.status_code == 200
    new = rotated.json["secret"]
    assert new != old and re.fullmatch(r"[0-9a-f]{64}", new)
    assert rotated.json["previous_secret_valid_until"] is not None
    assert client.get("/api/me/callback", headers=auth(token)).json["secret"] == new

    ended_run_with_callback(session, user_id, receiver.url + "/hook")
    assert deliver_due() == 1
    header, body = receiver.requests[0].headers["X-Docqueue-Signature"], receiver.requests[0].body
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}", header)
    # A receiver still on the old secret and one already on the new one both accept it.
    assert verify(header, body, old, time.time()) and verify(header, body, new, time.time())

    # The grace period over, only the new secret signs.
    session.execute(
        sa.text("UPDATE users SET callback_secret_previous_until = now() - interval '1 second' WHERE id = :u"),
        {"u": user_id},
    )
    session.commit()
    ended_run_with_callback(session, user_id, receiver.url + "/hook")
    assert deliver_due() == 1
    header, body = receiver.requests[1].headers["X-Docqueue-Signature"], receiver.requests[1].body
    assert verify(header, body, new, time.time()) and not verify(header, body, old, time.time())
    assert client.get("/api/me/callback", headers=auth(token)).json["previous_secret_valid_until"] is None


def test_a_user_rotates_the_secret_on_the_callbacks_page(app, make_user, session):
    make_user("pager@example.com", password=PASSWORD)
    browser = app.test_client()
    login_page = browser.get("/login").get_data(as_text=True)
    login_csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    logged_in = browser.post(
        "/login", data={"email": "pager@example.com", "password": PASSWORD, "csrf_token": login_csrf}
    )
    assert logged_in.status_code == 302
    page = browser.get("/callbacks").get_data(as_text=True)
    old = re.search(r'class="callback-secret">([0-9a-f]+)<', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert browser.post("/callbacks/rotate-secret", data={}).status_code == 400  # no CSRF token: nothing changes
    answer = browser.post("/callbacks/rotate-secret", data={"csrf_token": csrf}, follow_redirects=True)
    page = answer.get_data(as_text=True)
    new = re.search(r'class="callback-secret">([0-9a-f]+)<', page).group(1)
    assert new != old
    assert "the old one also signs every callback for 24 more hours" in page
    assert "still signs every callback until" in page
    stored = session.execute(
        sa.text("SELECT callback_secret, callback_secret_previous FROM users WHERE email = 'pager@example.com'")
    ).one()
    assert tuple(stored) == (new, old)
    assert session.execute(sa.text("SELECT action FROM audit_log")).scalars().all() == ["user.rotate_callback_secret"]


def test_an_admin_rotates_a_users_secret_from_the_command_line(make_user, session):
    from docqueue.cli import main

    make_user("cli-hooks@example.com")
    old = session.execute(sa.text("SELECT callback_secret FROM users")).scalar_one()
    session.commit()
    result = CliRunner().invoke(main, ["user", "callback-secret", "rotate", "cli-hooks@example.com"])
    assert result.exit_code == 0, result.output
    new = result.output.splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{64}", new)
    stored = session.execute(sa.text("SELECT callback_secret, callback_secret_previous FROM users")).one()
    assert tuple(stored) == (new, old)
    missing = CliRunner().invoke(main, ["user", "callback-secret", "rotate", "nobody@example.com"])
    assert missing.exit_code == 1
