"""Accounts and web safety through Flask's test client: headers, roles, CSRF, metrics, the user CLI."""

from __future__ import annotations

import re

from click.testing import CliRunner

from docqueue.settings import get_settings
from tests.support.accounts import PASSWORD, log_in
from tests.support.factories import add_document


def test_every_response_carries_the_security_headers(client):
    for response in (
        client.get("/login"),
        client.get("/healthz"),
        client.get("/api/queue/stats"),
        client.get("/admin"),
    ):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_templates_have_no_inline_script_or_style(app):
    from docqueue.local.procfile import REPO_ROOT

    for template in (REPO_ROOT / "templates").rglob("*.html"):
        source = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), template
        assert "<style" not in source and " style=" not in source and not re.search(r"\son\w+=", source), template


def test_queue_stats_show_a_viewer_their_own_counts_and_an_operator_everything(client, make_user, session):
    viewer_id, viewer_token = make_user()
    other_id, _ = make_user()
    _, operator_token = make_user(role="operator")
    add_document(session, viewer_id)
    for _ in range(2):
        add_document(session, other_id)

    def stats(token):
        return client.get("/api/queue/stats", headers={"Authorization": f"Bearer {token}"}).json

    assert stats(viewer_token)["pending"] == 1
    assert stats(operator_token)["pending"] == 3


def test_roles_are_enforced_on_every_admin_action(no_csrf_app, make_user, session):
    viewer_id, _ = make_user("viewer@example.com", password=PASSWORD)
    make_user("op@example.com", password=PASSWORD, role="operator")
    make_user("boss@example.com", password=PASSWORD, role="admin")
    document_id = add_document(session, viewer_id)
    other_id = add_document(session, make_user()[0])
    job_id = session.execute(
        __import__("sqlalchemy").text("SELECT id FROM document_queue WHERE document_id = :d"), {"d": document_id}
    ).scalar()
    posts = [
        ("/admin/jobs/action", {"action": "cancel", "job_id": str(job_id)}),
        ("/admin/queue/pause", {}),
        ("/admin/queue/clear-completed", {"days": "1"}),
        ("/admin/jobs/retry-matching", {}),
        ("/admin/failures/retry", {"stage": "inspect", "error_message": "x"}),
        ("/admin/users", {"email": "new@example.com", "role": "admin"}),
        (f"/admin/users/{viewer_id}/role", {"role": "admin"}),
    ]
    viewer = no_csrf_app.test_client()
    log_in(viewer, "viewer@example.com")
    assert viewer.get("/admin").status_code == 200
    jobs_page = viewer.get("/admin/jobs")
    assert f"job-{job_id}".encode() in jobs_page.data and b'name="job_id"' not in jobs_page.data
    assert viewer.get(f"/admin/documents/{other_id}").status_code == 404  # another user's document
    for url in ("/admin/users", "/admin/failures", "/admin/series.json"):
        assert viewer.get(url).status_code == 403, url
    for url, data in posts:
        assert viewer.post(url, data=data).status_code == 403, url

    operator = no_csrf_app.test_client()
    log_in(operator, "op@example.com")
    assert operator.get("/admin/users").status_code == 403
    for url, data in posts[-2:]:
        assert operator.post(url, data=data).status_code == 403, url
    assert operator.get(f"/admin/documents/{other_id}").status_code == 200
    assert operator.post("/admin/jobs/action", data=posts[0][1]).status_code == 302
    status = session.execute(
        __import__("sqlalchemy").text("SELECT status FROM document_queue WHERE id = :j"), {"j": job_id}
    ).scalar()
    assert status == "cancelled"

    admin = no_csrf_app.test_client()
    log_in(admin, "boss@example.com")
    assert admin.post(f"/admin/users/{viewer_id}/role", data={"role": "operator"}).status_code == 302
    assert b"viewer@example.com is now operator" in admin.get("/admin/users").data


def test_a_post_without_the_csrf_token_is_refused(app, make_user):
    make_user("c@example.com", password=PASSWORD, role="operator")
    client = app.test_client()
    login_page = client.get("/login").data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    assert (
        client.post("/login", data={"email": "c@example.com", "password": PASSWORD, "csrf_token": token}).status_code
        == 302
    )
    refused = client.post("/admin/queue/pause")
    assert refused.status_code == 400 and b"CSRF" in refused.data
    page = client.get("/admin").data.decode()
    header_token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    # htmx sends it as a header (hx-headers on <body>): that is accepted.
    assert client.post("/admin/queue/pause", headers={"X-CSRFToken": header_token}).status_code == 302


def test_metrics_need_an_operator_token_or_the_metrics_token(client, make_user, session, monkeypatch):
    owner_id, viewer_token = make_user()
    _, operator_token = make_user(role="operator")
    add_document(session, owner_id)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {viewer_token}"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": f"Bearer {operator_token}"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.data.decode()
    assert 'docqueue_jobs{status="pending"} 1.0' in text
    assert 'docqueue_stage_jobs{stage="inspect",status="pending"} 1.0' in text
    monkeypatch.setenv("METRICS_TOKEN", "scrape-secret")
    get_settings.cache_clear()
    try:
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200
    finally:
        monkeypatch.delenv("METRICS_TOKEN")
        get_settings.cache_clear()


def test_user_commands_manage_roles_accounts_and_settings(test_env, session):
    from docqueue.cli import main

    runner = CliRunner()
    created = runner.invoke(main, ["user", "create", "ops@example.com", "--role", "operator"])
    assert created.exit_code == 0 and "created operator ops@example.com" in created.output
    legacy = runner.invoke(main, ["user", "create", "root@example.com", "--admin"])
    assert "created admin root@example.com" in legacy.output
    assert (
        runner.invoke(main, ["user", "role", "ops@example.com", "admin"]).output.strip()
        == "ops@example.com is now admin"
    )
    assert runner.invoke(main, ["user", "disable", "ops@example.com"]).exit_code == 0
    settings = runner.invoke(
        main, ["user", "settings", "ops@example.com", "--concurrent-ocr-jobs", "5", "--no-background-ocr"]
    )
    assert "concurrent_ocr_jobs=5" in settings.output and "enable_background_ocr=False" in settings.output
    assert "disabled=yes" in settings.output
    assert (
        "disabled=no"
        in runner.invoke(main, ["user", "enable", "ops@example.com"]).output
        + runner.invoke(main, ["user", "settings", "ops@example.com"]).output
    )
    bad = runner.invoke(main, ["user", "settings", "ops@example.com", "--ocr-timeout-seconds", "0"])
    assert bad.exit_code == 1 and "ocr_timeout_seconds must be" in bad.output
    assert runner.invoke(main, ["user", "role", "nobody@example.com", "admin"]).exit_code == 1
    actions = [
        row[0] for row in session.execute(__import__("sqlalchemy").text("SELECT action FROM audit_log ORDER BY id"))
    ]
    assert actions == ["user.role", "user.disable", "user.settings", "user.enable"]


def test_an_open_breaker_shows_on_the_dashboard_and_in_metrics(no_csrf_app, make_user):
    from docqueue.ai.breakers import breaker

    _, token = make_user("watcher@example.com", password=PASSWORD, role="operator")
    client = no_csrf_app.test_client()
    log_in(client, "watcher@example.com")
    breaker("embeddings").open()
    try:
        page = client.get("/admin").get_data(as_text=True)
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    finally:
        breaker("embeddings").close()
    # In plain words, and a service not configured (chat here) is not listed at all.
    assert re.search(
        r'data-breaker="embeddings">.*Embeddings provider unreachable since \d\d:\d\d UTC: its documents '
        r"wait; next try \d\d:\d\d UTC",
        page,
    )
    assert "held: waiting for the embeddings provider" in page
    assert 'data-breaker="chat"' not in page
    assert 'docqueue_breaker_open{breaker="embeddings",state="open"} 1.0' in metrics
