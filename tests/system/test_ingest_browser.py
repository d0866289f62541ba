"""Importing a folder from the upload page in real Chromium, against the real web process."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import PASSWORD, log_in
from tests.support.processes import CORPUS, start_web


def test_a_folder_chosen_in_the_browser_is_imported_once(browser, procfile, make_user, tmp_path):
    base_url = start_web(procfile)
    make_user("folder@example.com", password=PASSWORD)
    folder = tmp_path / "trip"
    (folder / "day1").mkdir(parents=True)
    (folder / "day1" / "minimal.pdf").write_bytes((CORPUS / "pdf" / "minimal-document.pdf").read_bytes())
    (folder / "latex.pdf").write_bytes((CORPUS / "pdf" / "pdflatex-4-pages.pdf").read_bytes())
    (folder / "notes.txt").write_text("not a document\n")

    page = browser.new_page()
    log_in(page, base_url, "folder@example.com")
    for expected in (
        "Folder imported: 2 files queued, 0 already there, 1 rejected.",
        "Folder imported: 0 files queued, 2 already there, 1 rejected.",
    ):
        page.get_by_label("Folder").set_input_files(folder)
        page.get_by_role("button", name="Import folder").click()
        expect(page.locator(".flash-info")).to_have_text(expected)
        expect(page.locator(".flash-error")).to_contain_text("trip/notes.txt: unsupported file type")
    documents = page.locator("#documents")
    expect(documents.locator("tr")).to_have_count(2)
    expect(documents).to_contain_text("minimal.pdf")
    expect(documents).to_contain_text("latex.pdf")
