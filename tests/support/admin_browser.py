"""What the admin pages' browser tests share: a page that fails on CSP violations, screenshots, logging in.

The `page` fixture itself is in tests/system/conftest.py.
"""

from __future__ import annotations

from playwright.sync_api import expect

from docqueue.local.procfile import REPO_ROOT
from tests.support.browser import PASSWORD

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-email")).to_have_text(email)
