"""Chaos, the services going away: Redis unreachable then restarted empty, Postgres restarted, the web killed
mid-upload, each under real worker, clock and web processes (see test_chaos.py for what every scenario checks).
"""

from __future__ import annotations

import socket
import time

import requests
import sqlalchemy as sa

from tests.support.chaos import (
    assert_processed_once,
    chaos_documents,
    in_flight_job,
    start,
    submit_all,
    wait_all_finished,
)
from tests.support.processes import free_port, start_web, wait_for_web, wait_until


def test_redis_unreachable_while_uploads_arrive_then_restarted_empty(procfile, engine, make_user, private_redis):
    owner, token = make_user(concurrent_ocr_jobs=6)
    redis_env = {"REDIS_URL": private_redis.url}
    start(procfile, "worker", **redis_env)
    start(procfile, "clock", **redis_env)
    base_url = start_web(procfile, processes=1, **redis_env)
    documents = chaos_documents()
    half = len(documents) // 2
    uploaded = submit_all(owner, documents[:half])
    wait_until(lambda: in_flight_job(engine, "extract_text", long_only=True), timeout=120, message="a long extraction")
    private_redis.kill()
    # Uploads over HTTP keep being accepted: Postgres holds them; their messages wait for Redis.
    for document in documents[half:]:
        response = requests.post(
            f"{base_url}/api/documents",
            files={"file": (document.name, document.data)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        uploaded[response.json()["id"]] = document
    time.sleep(5)  # stages finish and re-sends fall due with nowhere to send their messages
    private_redis.start()
    back_at = time.monotonic()
    wait_all_finished(engine, uploaded, back_at, "Redis unreachable, then restarted empty")
    assert_processed_once(engine, uploaded)


def test_postgres_restarted_mid_run_web_answers_503_meanwhile(procfile, private_postgres, broker):
    from docqueue.accounts.users import create_user
    from docqueue.db import get_engine, session_scope

    engine = get_engine()
    with session_scope() as session:
        user, token = create_user(session, "chaos@example.com")
        user.concurrent_ocr_jobs = 6
        owner = user.id
    database_env = {"DATABASE_URL": private_postgres.url}
    start(procfile, "worker", **database_env)
    start(procfile, "clock", **database_env)
    base_url = start_web(procfile, processes=1, **database_env)
    uploaded = submit_all(owner, chaos_documents())
    wait_until(lambda: in_flight_job(engine, "extract_text", long_only=True), timeout=120, message="a long extraction")
    private_postgres.stop("immediate")
    engine.dispose()
    response = requests.get(f"{base_url}/api/documents", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert "database is unavailable" in response.json()["error"]
    time.sleep(3)
    private_postgres.start()
    back_at = time.monotonic()
    wait_all_finished(engine, uploaded, back_at, "Postgres restarted")
    assert_processed_once(engine, uploaded)


def test_web_killed_mid_upload_stores_nothing_half(procfile, engine, make_user):
    _, token = make_user()
    port = free_port()
    web = procfile("web", PORT=port, WEB_CONCURRENCY=1)
    wait_for_web(f"http://127.0.0.1:{port}")
    data = chaos_documents()[0].data
    boundary = "chaosboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST /api/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        connection.sendall(body[: len(body) // 2])
        time.sleep(1)
        web.kill()
    with engine.connect() as connection:
        counts = connection.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM document_queue), "
                "(SELECT count(*) FROM blob_chunks)"
            )
        ).one()
    assert tuple(counts) == (0, 0, 0), "no half-stored document, queue item or bytes"
    restarted = procfile("web", PORT=port, WEB_CONCURRENCY=1)
    wait_for_web(f"http://127.0.0.1:{port}")
    response = requests.post(
        f"http://127.0.0.1:{port}/api/documents",
        files={"file": ("whole.pdf", data)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 202, restarted.log()
