"""Logging in through Flask's test client: cookies, remembered and ended sessions, throttling, hash checks."""

from __future__ import annotations

import re
from datetime import UTC

from docqueue.accounts import users
from docqueue.settings import get_settings
from tests.support.accounts import PASSWORD, log_in


def cookie_headers(response, name: str) -> list[str]:
    return [value for value in response.headers.getlist("Set-Cookie") if value.startswith(f"{name}=")]


def test_remember_me_is_a_checkbox_and_its_cookie_is_lax_httponly_and_secure_over_https(no_csrf_app, make_user):
    make_user("r@example.com", password=PASSWORD)
    plain = log_in(no_csrf_app.test_client(), "r@example.com")
    assert plain.status_code == 302 and cookie_headers(plain, "remember_token") == []
    assert "Secure" not in cookie_headers(plain, "session")[0]

    https = no_csrf_app.test_client()
    remembered = log_in(https, "r@example.com", remember=True, base_url="https://localhost")
    [remember] = cookie_headers(remembered, "remember_token")
    [session_cookie] = cookie_headers(remembered, "session")
    for cookie in (remember, session_cookie):
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    expires = re.search(r"Expires=([^;]+)", remember).group(1)
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    days = (parsedate_to_datetime(expires) - datetime.now(UTC)).days
    assert days == get_settings().remember_days - 1  # 14 days less the seconds since login


def test_behind_a_trusted_proxy_the_forwarded_scheme_makes_cookies_secure(monkeypatch, test_env, broker, make_user):
    from web import create_app

    monkeypatch.setenv("PROXY_HOPS", "1")
    get_settings.cache_clear()
    try:
        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    finally:
        monkeypatch.delenv("PROXY_HOPS")
        get_settings.cache_clear()
    make_user("p@example.com", password=PASSWORD)
    response = log_in(app.test_client(), "p@example.com", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in cookie_headers(response, "session")[0]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_remember_cookie_copied_before_logout_no_longer_logs_in(no_csrf_app, make_user):
    make_user("victim@example.com", password=PASSWORD)
    victim = no_csrf_app.test_client()
    log_in(victim, "victim@example.com", remember=True)
    stolen = victim.get_cookie("remember_token").value

    thief = no_csrf_app.test_client()
    thief.set_cookie("remember_token", stolen)
    assert thief.get("/").status_code == 200  # the copy works while the victim is logged in

    assert victim.post("/logout").status_code == 302
    thief_again = no_csrf_app.test_client()
    thief_again.set_cookie("remember_token", stolen)
    assert thief_again.get("/").headers["Location"].startswith("/login")
    # The thief's own session, made from the cookie before the logout, is over too.
    assert thief.get("/").headers["Location"].startswith("/login")


def test_a_password_change_ends_every_session(no_csrf_app, make_user, session):
    from docqueue.accounts.management import find_user, set_password

    make_user("mover@example.com", password=PASSWORD)
    browser = no_csrf_app.test_client()
    log_in(browser, "mover@example.com", remember=True)
    remembered = browser.get_cookie("remember_token").value
    set_password(session, None, find_user(session, "mover@example.com"), "a whole new password")
    session.commit()
    assert browser.get("/").headers["Location"].startswith("/login")
    copy = no_csrf_app.test_client()
    copy.set_cookie("remember_token", remembered)
    assert copy.get("/").headers["Location"].startswith("/login")
    assert log_in(no_csrf_app.test_client(), "mover@example.com", "a whole new password").status_code == 302


def test_a_disabled_user_cannot_log_in_keep_a_session_or_use_a_token(no_csrf_app, make_user, session):
    from docqueue.accounts.management import find_user, set_disabled

    _, token = make_user("gone@example.com", password=PASSWORD)
    browser = no_csrf_app.test_client()
    log_in(browser, "gone@example.com")
    assert browser.get("/").status_code == 200
    set_disabled(session, None, find_user(session, "gone@example.com"), True)
    session.commit()

    assert browser.get("/").headers["Location"].startswith("/login")
    assert log_in(no_csrf_app.test_client(), "gone@example.com").status_code == 401
    assert (
        no_csrf_app.test_client().get("/api/documents", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def test_thirty_wrong_passwords_are_throttled(no_csrf_app, make_user):
    make_user("target@example.com", password=PASSWORD)
    client = no_csrf_app.test_client()
    statuses = [log_in(client, "target@example.com", "wrong").status_code for _ in range(30)]
    limit = get_settings().login_failures_per_minute
    assert statuses[:limit] == [401] * limit
    assert set(statuses[limit:]) == {429}
    refused = log_in(client, "target@example.com", "wrong")
    assert b"Too many failed logins" in refused.data and "Retry-After" in refused.headers


def test_a_good_login_is_not_counted_as_a_failure(no_csrf_app, make_user):
    make_user("often@example.com", password=PASSWORD)
    for _ in range(get_settings().login_failures_per_minute + 5):
        assert log_in(no_csrf_app.test_client(), "often@example.com").status_code == 302


def test_a_wrong_password_costs_one_hash_check_for_known_unknown_and_disabled_emails(
    no_csrf_app, make_user, session, monkeypatch
):
    from docqueue.accounts.management import find_user, set_disabled

    make_user("known@example.com", password=PASSWORD)
    make_user("off@example.com", password=PASSWORD)
    make_user("api-only@example.com")
    set_disabled(session, None, find_user(session, "off@example.com"), True)
    session.commit()
    checked = []
    real_check = users.check_password_hash

    def spy(password_hash, password):
        checked.append(password_hash)
        return real_check(password_hash, password)

    monkeypatch.setattr(users, "check_password_hash", spy)
    client = no_csrf_app.test_client()
    assert log_in(client, "nobody@example.com", "wrong").status_code == 401
    assert checked == [users.DUMMY_PASSWORD_HASH]
    assert log_in(client, "known@example.com", "wrong").status_code == 401
    assert checked[-1] == find_user(session, "known@example.com").password_hash
    # A disabled account's right password is refused, after the same one check.
    assert log_in(client, "off@example.com", PASSWORD).status_code == 401
    assert checked[-1] == users.DUMMY_PASSWORD_HASH and len(checked) == 3
    # An account made without a password takes no password at all, not even its stored marker.
    assert log_in(client, "api-only@example.com", users.NO_PASSWORD).status_code == 401
    assert checked[-1] == users.DUMMY_PASSWORD_HASH and len(checked) == 4
    # The dummy hash is made the way real ones are, so it costs the same.
    assert users.DUMMY_PASSWORD_HASH.split("$")[0] == checked[1].split("$")[0]
