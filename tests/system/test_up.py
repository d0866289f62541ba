"""`docqueue up` end to end, as a newcomer runs it: no servers configured.

It must start embedded Postgres and Redis, create and announce an admin,
process a real PDF, stop everything it started on Ctrl-C, and find its data
again on the next run. This test deliberately does not use `test_env`: it
must not depend on DATABASE_URL or REDIS_URL.
"""

from __future__ import annotations

import re

import requests

from tests.support.processes import CORPUS, free_port, wait_until
from tests.support.up import UpProcess, started_processes, upload


def test_up_runs_everything_stops_cleanly_and_keeps_its_data(tmp_path):
    port = free_port()
    pdf = CORPUS / "pdf" / "pdflatex-4-pages.pdf"

    first = UpProcess(tmp_path, port)
    try:
        token = first.wait_for(r"API token:\s*(\S+)", timeout=120).group(1)
        assert first.wait_for(r"login:\s*admin@localhost", timeout=1)
        assert first.wait_for(r"password:\s*\S+", timeout=1)
        first.wait_for(re.escape(first.url), timeout=120)
        secret_key = tmp_path / ".docqueue" / "secret_key"
        assert secret_key.stat().st_mode & 0o777 == 0o600

        document_id = upload(first.url, token, pdf)
        headers = {"Authorization": f"Bearer {token}"}

        def completed():
            document = requests.get(f"{first.url}api/documents/{document_id}", headers=headers, timeout=10).json()
            assert document["status"] not in ("failed", "dead"), document
            return document if document["status"] == "completed" else None

        document = wait_until(completed, timeout=90, interval=0.5, message="the PDF to be processed")
        assert document["page_count"] == 4

        assert first.interrupt() == 0, first.output()
        assert started_processes(tmp_path) == [], first.output()
    finally:
        first.kill()
    assert "stopped" in first.lines[-3:], first.output()

    second = UpProcess(tmp_path, port)
    try:
        second.wait_for(re.escape(second.url), timeout=120)
        assert "admin admin@localhost already exists" in second.output()
        assert "API token" not in second.output()
        assert secret_key.read_text()  # the same file, reused

        listed = requests.get(f"{second.url}api/documents", headers=headers, timeout=10).json()["documents"]
        assert [(d["id"], d["status"]) for d in listed] == [(document_id, "completed")]

        assert second.interrupt() == 0, second.output()
        assert started_processes(tmp_path) == [], second.output()
    finally:
        second.kill()
