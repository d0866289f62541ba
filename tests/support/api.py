"""Calling the JSON API: a user's bearer header, an upload, and a small client for a running web."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.factories import make_pdf
from tests.support.processes import REPO


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(client, token, data: bytes = b"", filename="doc.pdf", **form):
    payload = {"file": (io.BytesIO(data or make_pdf(["hello"])), filename), **form}
    return client.post("/api/documents", data=payload, headers=auth(token), content_type="multipart/form-data")


def create_admin_with_cli(test_env: dict) -> str:
    """`docqueue user create` as an operator would run it; the token is alone on the last line."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "docqueue"), "user", "create", "ops@example.com", "--admin"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


class Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}

    def upload(self, name: str, data: bytes) -> int:
        response = requests.post(
            f"{self.base_url}/api/documents", files={"file": (name, data)}, headers=self.headers, timeout=30
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        return response.json()["id"]

    def get(self, path: str):
        response = requests.get(f"{self.base_url}{path}", headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def documents(self) -> dict[int, dict]:
        return {d["id"]: d for d in self.get("/api/documents?limit=1000")["documents"]}

    def all_finished(self, ids) -> dict[int, dict] | None:
        documents = self.documents()
        finished = all(documents[i]["status"] in ("completed", "failed") for i in ids)
        return documents if finished else None
