"""`GET /api/documents` pages through any number of documents by keyset, with the page's filters."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.factories import add_document, make_pdf


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_an_owner_of_130_documents_pages_through_all_of_them_50_at_a_time(client, make_user, session):
    owner, token = make_user()
    data = make_pdf(["hello"])
    ids = [add_document(session, owner, data, filename=f"doc-{n:03}.pdf") for n in range(130)]
    other, _ = make_user()
    add_document(session, other, data, filename="someone-else.pdf")

    seen, url, pages = [], "/api/documents?limit=50", 0
    while url:
        response = client.get(url, headers=auth(token))
        assert response.status_code == 200, response.json
        seen += [document["id"] for document in response.json["documents"]]
        url, pages = response.json["next"], pages + 1
    assert pages == 3 and len(seen) == 130
    assert seen == sorted(ids, reverse=True), "newest first, each document once, none of another owner's"


def test_the_filters_of_the_page_apply_and_next_keeps_them(client, make_user, session):
    owner, token = make_user()
    data = make_pdf(["hello"])
    invoices = [add_document(session, owner, data, filename=f"invoice-{n}.pdf") for n in range(5)]
    for n in range(5):
        add_document(session, owner, data, filename=f"letter-{n}.pdf")
    session.execute(sa.text("UPDATE documents SET status = 'failed' WHERE id = ANY(:ids)"), {"ids": invoices[:3]})
    session.commit()

    first = client.get("/api/documents?q=INVOICE&limit=2", headers=auth(token)).json
    assert [d["filename"] for d in first["documents"]] == ["invoice-4.pdf", "invoice-3.pdf"]
    assert "q=INVOICE" in first["next"] and "limit=2" in first["next"]
    rest = client.get(first["next"], headers=auth(token)).json
    assert [d["id"] for d in rest["documents"]] == [invoices[2], invoices[1]]

    failed = client.get("/api/documents?status=failed&q=invoice", headers=auth(token)).json
    assert sorted(d["id"] for d in failed["documents"]) == invoices[:3] and failed["next"] is None


def test_bad_paging_parameters_answer_400_in_json(client, make_user):
    _, token = make_user()
    for query, error in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("status=lost", "unknown status 'lost'"),
        ("q=" + "x" * 256, "longer than 255"),
    ]:
        response = client.get(f"/api/documents?{query}", headers=auth(token))
        assert response.status_code == 400, query
        assert error in response.json["error"], (query, response.json)


def test_after_another_owners_document_shows_nothing_of_theirs(client, make_user, session):
    owner, token = make_user()
    other, _ = make_user()
    theirs = add_document(session, other, make_pdf(["theirs"]))
    add_document(session, owner, make_pdf(["mine"]))
    response = client.get(f"/api/documents?after={theirs}", headers=auth(token))
    assert response.status_code == 200
    assert response.json == {"documents": [], "next": None}
