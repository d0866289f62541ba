"""Live polling on the admin dashboard in real Chromium: it pauses while the tab is hidden and resumes when shown."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.admin_browser import log_in, shot
from tests.support.browser import PASSWORD
from tests.support.processes import start_web

# What a browser does when the user switches tabs: Playwright's page never hides, so the test says it did.
SET_VISIBILITY = """hidden => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => hidden ? "hidden" : "visible" });
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_polling_pauses_while_the_tab_is_hidden_and_resumes_when_shown(procfile, make_user, page):
    base_url = start_web(procfile)
    make_user("watch@example.com", password=PASSWORD, role="operator")
    log_in(page, base_url, "watch@example.com")
    page.goto(f"{base_url}/admin")
    polls = []
    page.on("request", lambda request: polls.append(request) if request.headers.get("hx-request") else None)
    page.get_by_label("Refresh interval").select_option("1")
    expect(page.locator("#poll-state")).to_have_text("live")
    with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
        pass  # the dashboard polls while shown

    page.evaluate(SET_VISIBILITY, True)
    expect(page.locator("#poll-state")).to_have_text("paused while this tab is hidden")
    shot(page, "admin-dashboard-hidden-tab")
    sent_while_hidden = len(polls)
    page.wait_for_timeout(3_000)  # three intervals of 1 s
    assert len(polls) == sent_while_hidden, "the dashboard polled while its tab was hidden"

    with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
        page.evaluate(SET_VISIBILITY, False)  # shown again: it refreshes at once
    expect(page.locator("#poll-state")).to_have_text("live")
