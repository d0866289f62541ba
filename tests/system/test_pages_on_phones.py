"""Every page at a desktop's 1280 px and a phone's 390 px, in real Chromium against the real web process.

No page may scroll sideways on a phone (`scrollWidth <= 390`), the menu stays
inside the header, and wide tables become cards or scroll inside their own
box. Each page is screenshotted at both widths under artifacts/screenshots/
(CI keeps that folder). The data is what an operator meets on a bad day: long
file names, a permanent failure, one that may pass, a provider whose breaker
is open, an import run.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from docqueue.ai.breakers import breaker
from docqueue.models import IngestRun
from tests.support.admin_browser import SCREENSHOTS
from tests.support.browser import PASSWORD
from tests.support.factories import add_document
from tests.support.processes import start_web
from tests.support.queue import failed_both_ways, failed_job

WIDTHS = {"desktop": 1280, "phone": 390}
LONG_NAME = "Quarterly_financial_statement_consolidated_subsidiaries_FY2025_final_v3_signed_scanned.pdf"


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def visit(page, url: str | None, name: str, width: int) -> list[str]:
    """Open `url` (None: stay), screenshot it; return what makes the page wider than the window, if anything."""
    if url is not None:
        page.goto(url)
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
    problems = []
    if page_width(page) > width:
        problems.append(f"{name} is {page_width(page)} px wide at {width} px")
    header = page.locator("header.topbar").bounding_box()
    for link in page.locator("header .nav a").all():
        box = link.bounding_box()
        # Inside the header, both across and down: the menu wraps within it rather than spilling out.
        if box["x"] + box["width"] > width or box["y"] + box["height"] > header["y"] + header["height"]:
            problems.append(f"{name}: the menu's {link.inner_text()!r} lies outside the header")
    return problems


@pytest.fixture
def stocked(procfile, make_user, session):
    """A web process and the data every page shows; the open breaker is closed again afterwards."""
    base_url = start_web(procfile)
    admin_id, _ = make_user("admin.with.a.rather.long.address@example.com", password=PASSWORD, role="admin")
    owner, _ = make_user("owner@example.com", concurrent_ocr_jobs=4)
    failed_both_ways(session, owner)
    crashed = failed_job(session, owner, "extract_text failed: OSError: the storage volume went away")
    session.execute(
        sa.text(
            "UPDATE documents SET filename = :name WHERE id IN (SELECT document_id FROM document_queue WHERE id = :j)"
        ),
        {"name": LONG_NAME, "j": crashed},
    )
    waiting = add_document(session, admin_id, filename=LONG_NAME.replace("final", "draft"))  # its own page: the owner's
    session.add(
        IngestRun(
            owner_id=owner,
            source="cli",
            paths="/srv/archive/scans/2025/a-very-long-folder-name-indeed",
            files_seen=1200,
            files_added=1180,
            rejected=20,
        )
    )
    session.commit()
    breaker("embeddings").open()
    try:
        yield base_url, crashed, waiting
    finally:
        breaker("embeddings").close()


@pytest.mark.parametrize("width_name", WIDTHS)
def test_every_page_fits_the_window_at_both_widths(browser, stocked, width_name):  # noqa: F811
    base_url, crashed_job, waiting_document = stocked
    width = WIDTHS[width_name]
    context = browser.new_context(viewport={"width": width, "height": 844 if width < 500 else 900})
    page = context.new_page()
    try:
        problems = visit(page, f"{base_url}/login", "login", width)
        page.get_by_label("Email").fill("admin.with.a.rather.long.address@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".user-email")).to_be_visible()
        # Every page an admin reaches from the menu, and the pages those lead to.
        for link in ("Documents", "Dashboard", "Jobs", "Failures", "Users", "Imports"):
            expect(page.locator("header .nav").get_by_role("link", name=link, exact=True)).to_be_visible()
        problems += visit(page, f"{base_url}/", "documents", width)
        problems += visit(page, f"{base_url}/documents/{waiting_document}", "document", width)
        problems += visit(page, f"{base_url}/admin", "admin-dashboard", width)
        problems += visit(page, f"{base_url}/admin/jobs", "admin-jobs", width)
        problems += visit(page, f"{base_url}/admin/jobs?status=failed", "admin-jobs-failed", width)
        problems += visit(page, f"{base_url}/admin/jobs/{crashed_job}", "admin-job", width)
        problems += visit(page, f"{base_url}/admin/documents/{waiting_document}", "admin-document", width)
        problems += visit(page, f"{base_url}/admin/failures", "admin-failures", width)
        problems += visit(page, f"{base_url}/admin/users", "admin-users", width)
        problems += visit(page, f"{base_url}/admin/ingests/", "admin-ingests", width)
        problems += visit(page, f"{base_url}/admin/jobs/999999999", "not-found", width)
        page.goto(f"{base_url}/admin/jobs?status=failed")
        page.get_by_role("button", name="Retry all failed matching this filter…").click()
        expect(page.locator("#preview-count")).to_be_visible()
        problems += visit(page, None, "admin-retry-preview", width)
        assert problems == []
    finally:
        context.close()


def test_jobs_lead_with_the_document_and_names_do_not_break_letter_by_letter(browser, stocked):  # noqa: F811
    base_url, crashed_job, _ = stocked
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{base_url}/login")
        page.get_by_label("Email").fill("admin.with.a.rather.long.address@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{base_url}/admin/jobs")
        row = page.locator(f"#job-{crashed_job}")
        name = row.locator("td.filename a")
        expect(name).to_have_text(LONG_NAME)
        # The name's column is at least 12rem (192 px) wide: whole words per line, not a letter a line.
        assert name.bounding_box()["width"] >= 160
        document_cell = row.locator("td").nth(1)
        expect(document_cell).to_contain_text(re.compile(r"doc #\d+"))
        expect(row.locator("td.job-number")).to_have_text(f"job #{crashed_job}")

        # The open breaker in plain words, amber rather than red, and the operator closes it by hand.
        page.goto(f"{base_url}/admin")
        service = page.locator('[data-breaker="embeddings"]')
        expect(service).to_contain_text(
            re.compile(
                r"Embeddings provider unreachable since \d\d:\d\d UTC: its documents wait; next try \d\d:\d\d UTC"
            )
        )
        expect(page.locator('[data-stat="backlog_eta"]')).to_have_text("held: waiting for the embeddings provider")
        colour = service.locator(".badge").evaluate("badge => getComputedStyle(badge).color")
        assert colour != "rgb(180, 35, 24)", "waiting is shown in the error red"
        page.on("dialog", lambda dialog: dialog.accept())
        service.get_by_role("button", name="It is back: try now").click()
        expect(page.locator(".flash-info")).to_contain_text("Trying the embeddings provider again now")
        expect(page.locator('[data-breaker="embeddings"]')).to_have_count(0)  # not configured, and closed: not listed
        expect(page.locator("table.audit tbody tr").first).to_contain_text("breaker.close")
        page.screenshot(path=SCREENSHOTS / "admin-dashboard-breaker-closed-by-hand-1280.png", full_page=True)
    finally:
        context.close()
