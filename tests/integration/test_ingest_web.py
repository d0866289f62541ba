"""The folder upload and the admin page of ingest runs, through the Flask app against real Postgres."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from tests.support.factories import make_pdf
from tests.support.ingest import logged_in, upload_folder


def test_a_folder_upload_is_an_ingest_run_and_admins_see_it(app, make_user, session, broker):
    client = logged_in(app, make_user, "folder@example.com")
    report = make_pdf(["report"])
    folder = {
        "trip/report.pdf": report,
        "trip/photos/again.pdf": report,  # same bytes: one document
        "trip/minutes.pdf": make_pdf(["minutes"]),
        "trip/readme.txt": b"just text\n",
        "trip/../../escape.pdf": make_pdf(["escape"]),  # a hostile path stays inside the upload
    }
    page = upload_folder(client, folder)
    assert page.status_code == 200
    assert b"Folder imported: 3 files queued, 1 already there, 1 rejected." in page.data
    assert b"trip/readme.txt: unsupported file type" in page.data
    lanes = session.execute(sa.text("SELECT DISTINCT lane FROM document_queue")).scalars().all()
    assert lanes == ["bulk"]
    names = sorted(session.execute(sa.text("SELECT filename FROM documents")).scalars())
    assert names == ["again.pdf", "escape.pdf", "minutes.pdf"]  # walk order: the copy in photos/ came first
    run = session.execute(sa.text("SELECT source, paths, status, files_added, rejected FROM ingest_runs")).one()
    assert tuple(run) == ("browser", "trip", "completed", 3, 1)

    again = upload_folder(client, folder)
    assert b"Folder imported: 0 files queued, 4 already there, 1 rejected." in again.data
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 3

    # Not for ordinary users; admins see both runs and can download the rejected files.
    assert client.get("/admin/ingests/").status_code == 403
    assert client.get("/admin/ingests/1/rejected.csv").status_code == 403
    admin = logged_in(app, make_user, "boss@example.com", role="admin")
    listing = admin.get("/admin/ingests/")
    assert listing.status_code == 200
    assert listing.data.count(b"folder@example.com") == 2
    assert b'data-status="completed"' in listing.data
    run_id = session.execute(sa.text("SELECT min(id) FROM ingest_runs")).scalar()
    download = admin.get(f"/admin/ingests/{run_id}/rejected.csv")
    assert download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert [row["path"] for row in rows] == ["trip/readme.txt"]
    assert rows[0]["reason"].startswith("unsupported file type")
    assert admin.get("/admin/ingests/999/rejected.csv").status_code == 404


def test_the_rejected_files_csv_never_starts_a_cell_with_a_formula(app, make_user, session):
    client = logged_in(app, make_user, "sheet@example.com")
    names = ["=1+2", "+1", "-2", "@SUM(A1)"]
    upload_folder(client, {f"{name}/notes.txt": b"text\n" for name in names})
    admin = logged_in(app, make_user, "sheets-admin@example.com", role="admin")
    run_id = session.execute(sa.text("SELECT id FROM ingest_runs")).scalar()
    rows = list(csv.DictReader(io.StringIO(admin.get(f"/admin/ingests/{run_id}/rejected.csv").get_data(as_text=True))))
    assert sorted(row["path"] for row in rows) == sorted(f"'{name}/notes.txt" for name in names)


def test_logged_out_visitors_are_sent_to_log_in(client, test_env):
    assert client.get("/admin/ingests/").headers["Location"].startswith("/login")
    assert client.post("/upload/folder").status_code in (302, 400)


def test_a_folder_over_the_upload_limit_is_refused_with_a_message(app, make_user, session):
    client = logged_in(app, make_user, "big@example.com")
    app.config.update(MAX_CONTENT_LENGTH=2048)
    page = upload_folder(client, {"big/a.pdf": b"%PDF-" + b"x" * 5000})
    assert b"the upload is larger than the 2048 byte limit (MAX_UPLOAD_MB); nothing was stored" in page.data
    assert session.execute(sa.text("SELECT count(*) FROM ingest_runs")).scalar() == 0
