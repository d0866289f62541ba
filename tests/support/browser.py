"""What the browser tests share: the test user's password, logging in, and how Chromium is started."""

from __future__ import annotations

import re

from playwright.sync_api import expect

PASSWORD = "correct horse battery staple"


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/")
    expect(page).to_have_url(re.compile(r"/login\b"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator(".user-email")).to_have_text(email)


# Debian's chromium, never a downloaded one; quiet flags so it makes no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
