"""A real PgBouncer in transaction mode in front of the test Postgres, as managed services run it.

Debian's `pgbouncer` (1.18), started on a free loopback port with its own
ini and user list in a folder of its own; the system's pgbouncer service is
never touched. Its defaults are kept where they matter: `options` is an
unsupported startup parameter (refused), and each transaction may run on
another server connection. It keeps few server connections, and not for
long: the Postgres it fronts is shared by every test run on the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PgBouncer:
    """A pgbouncer process pooling connections to the Postgres server of `server_url`."""

    def __init__(self, server_url: str, pool_size: int = 8) -> None:
        self.server = sa.make_url(server_url)
        self.pool_size = pool_size
        self.port = _free_port()
        # pgbouncer refuses to run as root; as root it drops to `nobody`, who must read and write its folder.
        self.folder = Path(tempfile.mkdtemp(prefix="docqueue-pgbouncer-"))
        self.folder.chmod(0o777)
        self.process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "pgbouncer.log"

    def start(self) -> PgBouncer:
        if not Path(PGBOUNCER).exists():
            raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer; .ci/run does)")
        host = self.server.host or self.server.query.get("host") or "127.0.0.1"
        user = self.server.username or "postgres"
        (self.folder / "userlist.txt").write_text(f'"{user}" "{self.server.password or ""}"\n')
        (self.folder / "pgbouncer.ini").write_text(
            f"""[databases]
* = host={host} port={self.server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.folder / "userlist.txt"}
pool_mode = transaction
max_client_conn = 2000
default_pool_size = {self.pool_size}
logfile = {self.log_path}
pidfile = {self.folder / "pgbouncer.pid"}
server_idle_timeout = 5
log_connections = 0
log_disconnections = 0
"""
        )
        for path in self.folder.iterdir():
            path.chmod(0o666)
        command = [PGBOUNCER, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(self.folder / "pgbouncer.ini")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.raw_url(self.server.database or "postgres"), connect_timeout=2) as probe:
                    probe.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    # e.g. "sbuf_connect failed: Permission denied": as root it runs as `nobody`, who cannot reach
                    # an embedded server's private socket; give the tests a DATABASE_URL on TCP.
                    raise RuntimeError(f"pgbouncer did not start or cannot reach Postgres: {self.log()}") from None
                time.sleep(0.2)

    def url_for(self, database_url: str) -> str:
        """`database_url` (a database on the pooled server) as reached through this pgbouncer."""
        url = sa.make_url(database_url)
        pooled = url.set(host="127.0.0.1", port=self.port, query={k: v for k, v in url.query.items() if k != "host"})
        return pooled.render_as_string(hide_password=False)

    def raw_url(self, database: str) -> str:
        """A plain libpq URL to `database` through this pgbouncer (for psycopg without SQLAlchemy)."""
        return f"postgresql://{self.server.username or 'postgres'}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
