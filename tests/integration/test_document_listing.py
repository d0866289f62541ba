"""The documents page's listing: keyset pages through any number of documents, search by name, status filter."""

from __future__ import annotations

import io

import sqlalchemy as sa

from docqueue.document_listing import ListingRequest, documents_page
from tests.support.factories import insert_documents, make_pdf


def newest_first(session, owner_id: int, where: str = "true") -> list[int]:
    return list(
        session.scalars(
            sa.text(f"SELECT id FROM documents WHERE owner_id = :owner AND {where} ORDER BY created_at DESC, id DESC"),
            {"owner": owner_id},
        )
    )


def walk(session, owner_id: int, **filters) -> tuple[list[list[int]], list[list[int]]]:
    """Every page, following Older links from the first page and then Newer links back."""
    forward, request = [], ListingRequest(**filters)
    while True:
        page = documents_page(session, owner_id, request, size=7)
        forward.append([document.id for document in page.documents])
        if not page.older:
            break
        request = ListingRequest(**filters, before=page.documents[-1].id)
    backward = [forward[-1]]
    while page.newer:
        page = documents_page(session, owner_id, ListingRequest(**filters, after=backward[-1][0]), size=7)
        backward.append([document.id for document in page.documents])
    return forward, backward[::-1]


def test_pages_cover_every_document_once_in_both_directions_with_filters(session, make_user):
    owner, _ = make_user()
    other, _ = make_user()
    insert_documents(session, owner, 50)
    insert_documents(session, other, 10)

    forward, backward = walk(session, owner)
    assert [id_ for page in forward for id_ in page] == newest_first(session, owner)
    assert forward == backward  # going back up gives exactly the same pages
    assert [len(page) for page in forward] == [7] * 7 + [1]

    failed, _ = walk(session, owner, status="failed")
    assert [id_ for page in failed for id_ in page] == newest_first(session, owner, "status = 'failed'")

    # Search matches part of the name, literally: "_" and "%" are not wildcards.
    found, _ = walk(session, owner, search="DOC-004")
    assert [id_ for page in found for id_ in page] == newest_first(session, owner, "filename LIKE 'doc-004%'")
    assert walk(session, owner, search="doc_0")[0] == [[]]
    assert walk(session, owner, search="%")[0] == [[]]

    # Another user's document id as a cursor shows nothing of theirs, and nothing at all.
    other_id = newest_first(session, other)[0]
    assert documents_page(session, owner, ListingRequest(before=other_id)).documents == []


def log_in(client, email: str) -> None:
    assert client.post("/login", data={"email": email, "password": "pw"}).status_code == 302


def test_documents_page_keeps_search_filter_and_position_in_the_url(app, make_user, session):
    owner, _ = make_user("lister@example.com", password="pw")
    insert_documents(session, owner, 120)
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    log_in(client, "lister@example.com")

    first = client.get("/").get_data(as_text=True)
    assert first.count('<tr id="document-') == 50
    assert "doc-0119.pdf" in first and "doc-0070.pdf" in first and "doc-0069.pdf" not in first
    oldest_shown = newest_first(session, owner)[49]
    assert f'href="/?before={oldest_shown}"' in first
    assert "hx-trigger" not in first  # nothing unfinished: no polling

    second = client.get(f"/?before={oldest_shown}").get_data(as_text=True)
    assert "doc-0069.pdf" in second and "doc-0070.pdf" not in second

    filtered = client.get("/?q=doc-01&status=failed").get_data(as_text=True)
    names = [f"doc-{n:04d}.pdf" for n in range(100, 120) if n % 3 == 0]
    assert filtered.count('<tr id="document-') == len(names)
    assert all(name in filtered for name in names)
    assert 'value="doc-01"' in filtered and '<option value="failed" selected>' in filtered

    assert "No documents match this search." in client.get("/?q=nothing-like-this").get_data(as_text=True)

    # A malformed parameter is said to be wrong, and the newest documents are shown.
    for bad in ("before=abc", "before=-1", "after=99999999999999999999", "status=lost", "before=1&after=2"):
        response = client.get(f"/?{bad}", follow_redirects=True)
        assert response.status_code == 200 and response.request.path == "/", bad
        assert "showing your newest documents instead" in response.get_data(as_text=True), bad

    # The htmx poll gets the list alone, for the same page.
    poll = client.get(f"/?before={oldest_shown}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert poll.lstrip().startswith('<div id="document-list"') and "doc-0069.pdf" in poll
    assert "Upload documents" not in poll


def test_upload_messages_count_files_and_name_a_file_once(app, make_user):
    make_user("uploader@example.com", password="pw")
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    log_in(client, "uploader@example.com")

    def upload(*files):
        data = {"files": [(io.BytesIO(content), name) for name, content in files]}
        return client.post("/upload", data=data, content_type="multipart/form-data", follow_redirects=True)

    one = upload(("one.pdf", make_pdf(["a"]))).get_data(as_text=True)
    assert "Queued 1 file<" in one
    two = upload(("a.pdf", make_pdf(["a"])), ("b.pdf", make_pdf(["b"]))).get_data(as_text=True)
    assert "Queued 2 files<" in two
    refused = upload(("c.pdf", make_pdf(["c"])), ("empty.pdf", b"")).get_data(as_text=True)
    assert "Queued 1 file<" in refused and "1 file not stored:" in refused
    assert "empty.pdf: the file is empty<" in refused
    assert "nothing was stored" not in refused
