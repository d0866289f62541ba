"""Odd requests a hostile but ordinary viewer sends, each answered clearly (issue 18): through the Flask app,
on the real database and broker."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from docqueue.ingest.runs import write_rejections_csv
from tests.support.api import auth, upload
from tests.support.factories import add_document, document_with_pages, make_pdf
from tests.support.ingest import logged_in, upload_folder

BIDI = "\u202e"


def test_a_list_next_link_is_built_from_the_route_and_paging_alone(client, make_user, session, monkeypatch):
    owner, token = make_user()
    document_id = document_with_pages(session, owner, monkeypatch, ["one", "two", "three", "four"]).document_id
    other_id = add_document(session, owner, make_pdf(["other"]))
    # Each of these once steered url_for: a TypeError (`endpoint`), a ValueError (`_scheme` without
    # `_external`), or a `next` that led to another document (`document_id`).
    odd = f"endpoint=x&_method=POST&_anchor=top&_scheme=javascript&_external=1&document_id={other_id}&x=1"
    response = client.get(f"/api/documents/{document_id}/pages?limit=2&{odd}", headers=auth(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [page["page"] for page in response.json["pages"]] == [1, 2]
    next_url = urlsplit(response.json["next"])
    assert next_url.path == f"/api/documents/{document_id}/pages"
    assert parse_qs(next_url.query) == {"limit": ["2"], "after": ["2"]}
    assert next_url.fragment == "" and next_url.scheme in ("http", "")
    rest = client.get(response.json["next"], headers=auth(token)).json
    assert [page["page"] for page in rest["pages"]] == [3, 4] and rest["next"] is None


def test_deeply_nested_json_is_a_400_and_changes_nothing(client, make_user):
    _, token = make_user()
    before = client.get("/api/me/callback", headers=auth(token)).json
    for depth in (100_000, 65):
        body = '{"callback_url": null, "x": ' + "[" * depth + "]" * depth + "}"
        response = client.put("/api/me/callback", data=body, content_type="application/json", headers=auth(token))
        assert response.status_code == 400, (depth, response.status_code)
        assert response.mimetype == "application/json" and "callback_url" in response.json["error"]
    assert client.get("/api/me/callback", headers=auth(token)).json == before
    # Nesting a real client might send still parses.
    body = '{"callback_url": null, "note": "[[[[ in a string is text ]]]]", "x": ' + "[" * 60 + "]" * 60 + "}"
    response = client.put("/api/me/callback", data=body, content_type="application/json", headers=auth(token))
    assert response.status_code == 200 and response.json["callback_url"] is None


def test_a_priority_in_other_digits_is_refused(client, make_user, session):
    _, token = make_user()
    for priority in ("\uff15", "\u0663", "\u00b2", "5\u200b", "1_0"):
        response = upload(client, token, priority=priority)
        assert response.status_code == 400, priority
        assert response.json == {"error": "priority must be a whole number from 0 to 100"}
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 0
    assert upload(client, token, priority=" 7 ").status_code == 202
    assert session.execute(sa.text("SELECT priority FROM document_queue")).scalar() == 7


def test_a_browser_priority_in_full_width_digits_is_refused(app, make_user, session):
    client = logged_in(app, make_user, "digits@example.com")
    data = {"files": [(io.BytesIO(make_pdf(["x"])), "x.pdf")], "priority": "\uff11\uff10"}
    page = client.post("/upload", data=data, content_type="multipart/form-data", follow_redirects=True)
    assert b"priority must be a whole number from 0 to 100" in page.data
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 0


def test_a_folder_whose_file_is_also_a_folder_keeps_every_file(app, make_user, session, broker):
    client = logged_in(app, make_user, "clash@example.com")
    for order in (["x/a.pdf", "x/a.pdf/b.pdf"], ["y/a.pdf/b.pdf", "y/a.pdf"]):
        page = upload_folder(client, {name: make_pdf([f"{name} text"]) for name in order})
        assert page.status_code == 200
        assert b"Folder imported: 2 files queued, 0 already there, 0 rejected." in page.data
    names = sorted(session.execute(sa.text("SELECT filename FROM documents")).scalars())
    assert names == ["0-a.pdf", "1-a.pdf", "b.pdf", "b.pdf"]


def test_bidi_overrides_leave_folder_names_in_messages_runs_and_csvs(app, make_user, session, broker):
    client = logged_in(app, make_user, "bidi@example.com")
    folder = {
        f"tr{BIDI}ip/read{BIDI}me.txt": b"just text\n",
        f"tr{BIDI}ip/in{BIDI}voice.pdf": make_pdf(["invoice"]),
        f"tr{BIDI}ip/\u2066empty\u2069.pdf": b"",
    }
    page = upload_folder(client, folder).get_data(as_text=True)
    assert "Folder imported: 1 file queued, 0 already there, 2 rejected." in page
    assert "trip/readme.txt: unsupported file type" in page
    assert "trip/empty.pdf: the file is empty" in page
    assert BIDI not in page and "\u2066" not in page
    run_id, paths = session.execute(sa.text("SELECT id, paths FROM ingest_runs")).one()
    assert paths == "trip"
    rejected = session.execute(sa.text("SELECT path FROM ingest_rejections ORDER BY seq")).scalars().all()
    assert sorted(rejected) == ["trip/empty.pdf", "trip/readme.txt"]
    assert session.execute(sa.text("SELECT filename FROM documents")).scalars().all() == ["invoice.pdf"]

    admin = logged_in(app, make_user, "bidi-admin@example.com", role="admin")
    listing = admin.get("/admin/ingests/").get_data(as_text=True)
    assert 'title="trip"' in listing and BIDI not in listing
    download = admin.get(f"/admin/ingests/{run_id}/rejected.csv").get_data(as_text=True)
    assert sorted(row["path"] for row in csv.DictReader(io.StringIO(download))) == ["trip/empty.pdf", "trip/readme.txt"]


def test_the_csv_cleans_names_recorded_before_names_were_cleaned():
    target = io.StringIO()
    write_rejections_csv([(f"old/in{BIDI}voice.pdf\x07", "unsupported file type"), (f"{BIDI}=1+2", "x")], target)
    rows = list(csv.DictReader(io.StringIO(target.getvalue())))
    assert [row["path"] for row in rows] == ["old/invoice.pdf", "'=1+2"]


def test_a_folder_name_with_a_bidi_override_is_cleaned_in_the_refusal(app, make_user, session):
    client = logged_in(app, make_user, "refused@example.com")
    page = upload_folder(client, {f"x{BIDI}y/b\x00ad.pdf": make_pdf(["bad"])}).get_data(as_text=True)
    assert "xy/bad.pdf: the file name contains a NUL byte; nothing was stored" in page
    assert BIDI not in page
    assert session.execute(sa.text("SELECT count(*) FROM ingest_runs")).scalar() == 0
