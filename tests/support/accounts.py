"""The password test accounts are made with, and logging in through Flask's test client."""

from __future__ import annotations

import re

import sqlalchemy as sa

PASSWORD = "correct horse battery staple"


def log_in(client, email: str, password: str = PASSWORD, remember: bool = False, **kwargs):
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data, **kwargs)


def operator_logged_in(app, email: str):
    """A client logged in through the form, and the CSRF token its pages carry for htmx and forms."""
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 302
    page = client.get("/admin").get_data(as_text=True)
    return client, re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def last_audit(session) -> tuple:
    session.commit()  # a fresh snapshot: the web committed in its own session
    return tuple(
        session.execute(sa.text("SELECT actor, action, count, detail FROM audit_log ORDER BY id DESC LIMIT 1")).one()
    )
