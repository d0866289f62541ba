"""The password test accounts are made with, and logging in through Flask's test client."""

from __future__ import annotations

PASSWORD = "correct horse battery staple"


def log_in(client, email: str, password: str = PASSWORD, remember: bool = False, **kwargs):
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data, **kwargs)
