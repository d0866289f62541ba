"""The browser pages end to end: real Chromium, real gunicorn web, real dramatiq worker."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from tests.support.browser import PASSWORD, log_in
from tests.support.factories import insert_documents
from tests.support.processes import CORPUS, start_web

FINISHED_TIMEOUT_MS = 60_000


def test_upload_and_watch_documents_finish_without_reloading(browser, procfile, make_user, tmp_path):
    base_url = start_web(procfile)
    make_user("reader@example.com", password=PASSWORD)
    _, other_token = make_user("other@example.com")
    with open(CORPUS / "pdf" / "annotated_pdf.pdf", "rb") as other_file:
        requests.post(
            f"{base_url}/api/documents",
            headers={"Authorization": f"Bearer {other_token}"},
            files={"file": other_file},
            timeout=10,
        ).raise_for_status()

    # Logged out: the page and its poll both send the browser to the login form.
    assert requests.get(f"{base_url}/", allow_redirects=False, timeout=10).headers["Location"].startswith("/login")
    poll = requests.get(f"{base_url}/", headers={"HX-Request": "true"}, allow_redirects=False, timeout=10)
    assert poll.status_code == 204 and poll.headers["HX-Redirect"].startswith("/login")

    page = browser.new_page()
    log_in(page, base_url, "reader@example.com")
    documents = page.locator("#documents")
    expect(documents).to_contain_text("No documents yet")
    expect(documents).not_to_contain_text("annotated_pdf.pdf")

    # Refused uploads store nothing: no CSRF token (400), a bad priority, no file at all.
    pdf_bytes = (CORPUS / "pdf" / "minimal-document.pdf").read_bytes()
    a_pdf = {"name": "x.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes}
    assert page.request.post(f"{base_url}/upload", multipart={"files": a_pdf}).status == 400
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    bad_priority = page.request.post(
        f"{base_url}/upload", multipart={"csrf_token": token, "priority": "500", "files": a_pdf}
    )
    assert "priority must be a whole number from 0 to 100" in bad_priority.text()
    no_files = page.request.post(f"{base_url}/upload", multipart={"csrf_token": token, "priority": ""})
    assert "Choose at least one file to upload." in no_files.text()
    page.reload()
    expect(documents).to_contain_text("No documents yet")

    notes = tmp_path / "notes.pdf"
    notes.write_text("Meeting notes: plain text with a .pdf name.\n")
    page.get_by_label("Files").set_input_files(
        [CORPUS / "pdf" / "pdflatex-4-pages.pdf", CORPUS / "pdf" / "minimal-document.pdf", notes]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".flash-info")).to_have_text("Queued 3 files")
    expect(documents.locator("tr")).to_have_count(3)
    # No worker yet, so every row is pending and the list polls.
    document_list = page.locator("#document-list")
    expect(document_list).to_have_attribute("hx-trigger", "every 2s")

    procfile("worker")
    for filename, pages in [("pdflatex-4-pages.pdf", "4"), ("minimal-document.pdf", "1")]:
        row = documents.locator("tr", has_text=filename)
        expect(row).to_have_attribute("data-status", "completed", timeout=FINISHED_TIMEOUT_MS)
        expect(row.locator(".pages")).to_have_text(pages)
        expect(row.locator(".percent")).to_have_text("100%")
    rejected = documents.locator("tr", has_text="notes.pdf")
    expect(rejected).to_have_attribute("data-status", "failed", timeout=FINISHED_TIMEOUT_MS)
    expect(rejected.locator(".error")).to_contain_text("unsupported file type")
    expect(documents.locator("tr")).to_have_count(3)

    # Everything is finished: the swapped-in list has no trigger and no poll follows.
    assert document_list.get_attribute("hx-trigger") is None
    polls = []
    page.on("request", lambda request: polls.append(request.url) if request.headers.get("hx-request") else None)
    page.wait_for_timeout(5_000)
    assert polls == []

    page.screenshot(path=tmp_path / "documents.png", full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login\b"))


def names_shown(page) -> list[str]:
    return page.locator("#documents td.filename").all_inner_texts()


def test_page_through_search_and_filter_documents_on_a_phone(browser, procfile, make_user, session, tmp_path):
    base_url = start_web(procfile)
    owner, _ = make_user("pager@example.com", password=PASSWORD)
    insert_documents(session, owner, 120)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    log_in(page, base_url, "pager@example.com")

    # Newest first, 50 a page; Older and Newer links walk the pages, and the URL says where we are.
    expect(page.locator("#documents tr")).to_have_count(50)
    assert names_shown(page)[0] == "doc-0119.pdf" and names_shown(page)[-1] == "doc-0070.pdf"
    expect(page.get_by_role("link", name="← Newer")).to_have_count(0)
    page.get_by_role("link", name="Older →").click()
    expect(page).to_have_url(re.compile(r"/\?before=\d+$"))
    assert names_shown(page)[0] == "doc-0069.pdf" and names_shown(page)[-1] == "doc-0020.pdf"
    page.get_by_role("link", name="Older →").click()
    expect(page.locator("#documents tr")).to_have_count(20)
    assert names_shown(page)[-1] == "doc-0000.pdf"
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    page.get_by_role("link", name="← Newer").click()
    expect(page).to_have_url(re.compile(r"/\?after=\d+$"))
    assert names_shown(page)[0] == "doc-0069.pdf" and names_shown(page)[-1] == "doc-0020.pdf"
    page.get_by_role("link", name="Newest").click()
    assert names_shown(page)[0] == "doc-0119.pdf"

    # Search by part of the name and filter by status; both stay in the URL, so a reload keeps them.
    page.get_by_label("Search by name").fill("doc-01")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"q=doc-01&status=failed"))
    expected = [f"doc-{n:04d}.pdf" for n in range(119, 99, -1) if n % 3 == 0]
    expect(page.locator("#documents tr")).to_have_count(len(expected))
    assert names_shown(page) == expected
    page.reload()
    assert names_shown(page) == expected
    expect(page.get_by_label("Search by name")).to_have_value("doc-01")
    page.get_by_role("link", name="Clear").click()
    expect(page.locator("#documents tr")).to_have_count(50)

    # At 390 px nothing is wider than the screen: not the table, not the file picker.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    picker = page.get_by_label("Files").bounding_box()
    assert picker["x"] >= 0 and picker["x"] + picker["width"] <= 390
    for cell in page.locator("#documents tr").first.locator("td").all():
        box = cell.bounding_box()
        assert box is None or box["x"] + box["width"] <= 390
    page.screenshot(path=tmp_path / "documents-390.png", full_page=False)
