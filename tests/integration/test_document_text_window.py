"""The document page shows a window of the text and polls only a small status partial (issue 18: a document
of 100 pages of 1 MB of text made a 95 MB page, polled every 2 s)."""

from __future__ import annotations

from docqueue.queue import DocumentQueueService
from docqueue.statuses import FailureKind
from tests.support.factories import document_with_pages
from tests.support.ingest import logged_in

PAGE_CHARS = 60_000


def signed_in(app, make_user, email: str):
    """A browser session of a new user, and the user's id."""
    user_id, _ = make_user(email, password="pw")
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": "pw"}).status_code == 302
    return client, user_id


def page_text(number: int) -> str:
    return f"start of page {number} " + "w" * PAGE_CHARS


def test_the_text_is_shown_a_window_at_a_time_and_only_the_status_polls(app, make_user, session, monkeypatch):
    client, owner = signed_in(app, make_user, "long@example.com")
    claim = document_with_pages(session, owner, monkeypatch, [page_text(n) for n in range(1, 31)])
    document_id = claim.document_id

    first = client.get(f"/documents/{document_id}")
    html = first.get_data(as_text=True)
    assert first.status_code == 200
    # 200,000 characters at most: three pages of 60,000, not thirty.
    assert "start of page 3 " in html and "start of page 4 " not in html
    assert len(first.data) < 250_000
    assert f'href="/documents/{document_id}?after=3"' in html and "Pages 1–3 of 30" in html
    # Only the status partial polls, and it carries no text.
    assert html.count('hx-trigger="every 2s"') == 1
    assert f'id="document-status" data-status="processing" hx-get="/documents/{document_id}/status"' in html
    status = client.get(f"/documents/{document_id}/status", headers={"HX-Request": "true"})
    assert status.status_code == 200 and len(status.data) < 20_000
    assert "start of page" not in status.get_data(as_text=True) and "HX-Refresh" not in status.headers
    assert 'hx-trigger="every 2s"' in status.get_data(as_text=True)

    second = client.get(f"/documents/{document_id}?after=3").get_data(as_text=True)
    assert "start of page 4 " in second and "start of page 6 " in second and "start of page 7 " not in second
    assert "start of page 3 " not in second
    assert f'href="/documents/{document_id}"' in second and "?after=6" in second
    last = client.get(f"/documents/{document_id}?after=27").get_data(as_text=True)
    assert "start of page 30 " in last and "Next pages" not in last
    assert client.get(f"/documents/{document_id}?after=\uff13").status_code == 400

    # Once the document has finished, the poll's answer reloads the page, which no longer polls.
    DocumentQueueService(session).mark_failed(claim, "page 31 cannot be read", FailureKind.PERMANENT)
    session.commit()
    finished = client.get(f"/documents/{document_id}/status", headers={"HX-Request": "true"})
    assert finished.headers["HX-Refresh"] == "true"
    assert "hx-trigger" not in finished.get_data(as_text=True)
    assert "hx-trigger" not in client.get(f"/documents/{document_id}").get_data(as_text=True)


def test_one_page_longer_than_the_window_is_still_shown(app, make_user, session, monkeypatch):
    client, owner = signed_in(app, make_user, "huge@example.com")
    document_id = document_with_pages(session, owner, monkeypatch, ["x" * 250_000, "second page"]).document_id
    html = client.get(f"/documents/{document_id}").get_data(as_text=True)
    assert 'id="page-1"' in html and 'id="page-2"' not in html and "?after=1" in html


def test_another_users_status_is_a_404(app, make_user, session, monkeypatch):
    owner_client, owner = signed_in(app, make_user, "mine@example.com")
    document_id = document_with_pages(session, owner, monkeypatch, ["text"]).document_id
    assert owner_client.get(f"/documents/{document_id}/status").status_code == 200
    other = logged_in(app, make_user, "nosy@example.com")
    assert other.get(f"/documents/{document_id}/status").status_code == 404
