"""What the admin pages' browser tests share: a page that fails on CSP violations, screenshots, logging in.

Import the fixtures (`page`, and `browser` from tests.test_browser) into a test module to use them.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from docqueue.local.procfile import REPO_ROOT
from tests.test_browser import PASSWORD, browser  # noqa: F401  (the fixture `page` needs)

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"


@pytest.fixture
def page(browser):  # noqa: F811
    """A page that fails the test on any Content-Security-Policy violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page
    context.close()
    assert violations == []


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-email")).to_have_text(email)
