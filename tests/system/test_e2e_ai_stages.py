"""The later stages through the real Procfile processes: image counts as truth.json says, callbacks POSTed."""

from __future__ import annotations

import hashlib
import hmac
import json

import requests

from tests.support.api import Api, create_admin_with_cli
from tests.support.processes import CORPUS, start_web, wait_until
from tests.support.service_stub import ServiceStub, start_stub

FILES = [
    "google-doc-document.pdf",
    "grayscale-image.pdf",
    "imagemagick-images.pdf",
    "pdflatex-image.pdf",
    "inline-image.pdf",
    "pdflatex-4-pages.pdf",
]


def test_corpus_images_are_counted_by_real_workers_and_callbacks_arrive(procfile, test_env, corpus_truth):
    receiver = ServiceStub()
    receiver_url, server = start_stub(receiver)
    try:
        procfile("worker")
        procfile("clock")
        api = Api(start_web(procfile), create_admin_with_cli(test_env))
        uploaded = {api.upload(name, (CORPUS / "pdf" / name).read_bytes()): name for name in FILES}
        with_callback = requests.post(
            f"{api.base_url}/api/documents",
            files={"file": ("hooked.pdf", (CORPUS / "pdf" / "pdflatex-image.pdf").read_bytes())},
            data={"callback_url": receiver_url + "/done"},
            headers=api.headers,
            timeout=30,
        ).json()["id"]

        documents = wait_until(
            lambda: api.all_finished([*uploaded, with_callback]), timeout=300, message="the documents to finish"
        )
        for document_id, name in uploaded.items():
            assert (documents[document_id]["status"], documents[document_id]["error"]) == ("completed", None), name
            images = api.get(f"/api/documents/{document_id}/images?limit=1000")["images"]
            assert len(images) == corpus_truth[name]["image_xrefs"], name
            stages = {s["stage"]: s for s in api.get(f"/api/documents/{document_id}")["stages"]}
            assert stages["extract_images"]["status"] == "completed", name
            assert stages["embed"]["status"] == "skipped", name

        # The worker POSTs the callback (the clock asks again if the first request is lost).
        wait_until(lambda: receiver.requests, timeout=60, message="the callback to arrive")
        (request,) = receiver.requests
        secret = api.get("/api/me/callback")["secret"]
        stamp, signed = request.headers["X-Docqueue-Signature"].split(",")
        expected = hmac.new(secret.encode(), stamp.removeprefix("t=").encode() + b"." + request.body, hashlib.sha256)
        assert signed == f"v1={expected.hexdigest()}"
        assert json.loads(request.body)["status"] == "completed"
        shown = wait_until(
            lambda: [
                c
                for c in api.get(f"/api/documents/{with_callback}/callbacks")["callbacks"]
                if c["status"] == "delivered"
            ],
            timeout=30,
            message="the delivery to be recorded",
        )
        assert shown[0]["attempts"] == 1
    finally:
        server.shutdown()
