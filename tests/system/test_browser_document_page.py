"""A scan uploaded in the browser comes back searchable: real Chromium, gunicorn, dramatiq worker, tesseract."""

from __future__ import annotations

import re

import pymupdf
import requests
from playwright.sync_api import expect

from docqueue.pipeline import PIPELINE
from tests.support.browser import PASSWORD, log_in
from tests.support.processes import start_web
from tests.support.scans import PARAGRAPHS, coverage, joined_pdf, scan_page, text_image, text_pdf_page, words

FINISHED_TIMEOUT_MS = 180_000


def test_a_scan_uploaded_in_the_browser_comes_back_searchable(browser, procfile, make_user, tmp_path):
    base_url = start_web(procfile)
    _, token = make_user("scanner@example.com", password=PASSWORD)
    _, other_token = make_user("other@example.com")
    scan = tmp_path / "letter.pdf"
    scan.write_bytes(joined_pdf([text_pdf_page(PARAGRAPHS[0]), scan_page(text_image(PARAGRAPHS[1]), turn=90)]))

    page = browser.new_page()
    log_in(page, base_url, "scanner@example.com")
    page.get_by_label("Files").set_input_files([scan])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".flash-info")).to_have_text(re.compile(r"^Queued 1 file"))
    procfile("worker")
    row = page.locator("#documents tr", has_text="letter.pdf")
    row.locator("a.stage").click()
    expect(page).to_have_url(re.compile(r"/documents/\d+$"))
    document_id = int(page.url.rsplit("/", 1)[1])

    detail = page.locator("#document-detail")
    expect(detail).to_have_attribute("data-status", "completed", timeout=FINISHED_TIMEOUT_MS)
    stages = detail.locator("tr.stage")
    expect(stages).to_have_count(len(PIPELINE))
    ocr_stage = detail.locator('tr.stage[data-stage="ocr"]')
    expect(ocr_stage).to_have_attribute("data-status", "completed")
    expect(ocr_stage.locator(".units")).to_have_text("1 of 1 pages")
    expect(ocr_stage.locator(".duration")).to_have_text(re.compile(r"^\d+\.\d s$"))
    first, second = detail.locator("#page-1"), detail.locator("#page-2")
    expect(first).to_have_attribute("data-ocr", "false")
    expect(second).to_have_attribute("data-ocr", "true")
    expect(second.locator(".badge-ocr")).to_have_text("OCR")
    expect(second).to_contain_text("turbidity")
    # Finished: the swapped-in detail has no trigger, so polling stopped.
    assert detail.get_attribute("hx-trigger") is None

    link = detail.get_by_role("link", name="Download searchable PDF")
    download = page.request.get(base_url + link.get_attribute("href"))
    assert download.status == 200 and download.headers["content-type"] == "application/pdf"
    searchable = pymupdf.open(stream=download.body(), filetype="pdf")
    assert searchable.load_page(1).rotation == 90, "the scan lay on its side: it must come back upright"
    assert coverage(words(searchable.load_page(1).get_text()), words(PARAGRAPHS[1])) >= 0.9
    page.screenshot(path=tmp_path / "document.png", full_page=True)

    # The same over the API; another user sees nothing of it.
    headers = {"Authorization": f"Bearer {token}"}
    pages = requests.get(f"{base_url}/api/documents/{document_id}/pages", headers=headers, timeout=10).json()
    assert [p["ocr"] for p in pages["pages"]] == [False, True]
    assert coverage(words(pages["pages"][1]["text"]), words(PARAGRAPHS[1])) >= 0.9
    api_pdf = requests.get(f"{base_url}/api/documents/{document_id}/searchable.pdf", headers=headers, timeout=10)
    assert api_pdf.status_code == 200 and api_pdf.content == download.body()
    stranger = {"Authorization": f"Bearer {other_token}"}
    assert (
        requests.get(f"{base_url}/api/documents/{document_id}/searchable.pdf", headers=stranger, timeout=10).status_code
        == 404
    )
