"""An import run links to its documents: `/admin/ingests` → the jobs of exactly the documents that run added."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.support.accounts import PASSWORD, operator_logged_in
from tests.support.factories import add_document, make_pdf

DOCQUEUE = Path(sys.executable).parent / "docqueue"


def test_a_run_links_to_the_jobs_of_the_documents_it_added(app, make_user, session, broker, tmp_path):
    owner, _ = make_user("importer@example.com")
    make_user("op@example.com", password=PASSWORD, role="operator")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.pdf", "b.pdf"):
        (folder / name).write_bytes(make_pdf([f"page of {name}"]))
    result = subprocess.run(
        [str(DOCQUEUE), "ingest", str(folder), "--user", "importer@example.com"],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = int(re.search(r"run (\d+) completed", result.stdout).group(1))
    add_document(session, owner, make_pdf(["uploaded by hand"]), filename="single.pdf")  # not the run's

    client, _ = operator_logged_in(app, "op@example.com")
    runs = client.get("/admin/ingests/").get_data(as_text=True)
    assert f'href="/admin/jobs?run={run_id}"' in runs
    jobs = client.get(f"/admin/jobs?run={run_id}").get_data(as_text=True)
    assert sorted(re.findall(r">([ab]\.pdf)</a>", jobs)) == ["a.pdf", "b.pdf"] and "single.pdf" not in jobs
    assert f"import run #{run_id}" in jobs
    session.commit()
    tagged = session.execute(sa.text("SELECT count(*) FROM documents WHERE ingest_run_id = :r"), {"r": run_id})
    assert tagged.scalar() == 2
    assert client.get("/admin/jobs?run=x1").status_code == 400
