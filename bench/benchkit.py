"""What the bench scripts in this folder share: a throwaway environment, Procfile processes, waiting, RSS.

Not a benchmark itself. The scripts import it as `benchkit` (Python puts a
script's own folder first on `sys.path`), so each stays runnable as
`python bench/<name>.py` from the checkout.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import psutil
import redis
import requests
import sqlalchemy as sa

from docqueue.local.procfile import REPO_ROOT, procfile_commands, with_local_scripts
from docqueue.local.scratch import migrate, scratch_database
from docqueue.settings import get_settings


@contextmanager
def scratch_environment(name: str, **settings: str) -> Iterator[tuple[dict, Path]]:
    """A migrated scratch database, a Redis namespace of its own and a temp folder for logs.

    Yields (the environment every process should get, the folder for logs); this
    process's own environment and settings are switched to it as well.
    Drops the database and deletes the namespace's keys at the end. With
    BENCH_LOGS set, the processes' logs go to that folder and are kept.
    """
    namespace = f"bench-{name}-{secrets.token_hex(4)}"
    with (
        scratch_database(os.environ["DATABASE_URL"], f"docqueue_bench_{name}") as database_url,
        tempfile.TemporaryDirectory(prefix=f"docqueue-bench-{name}-") as temp,
    ):
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench",
            "REDIS_NAMESPACE": namespace,
            "BENCH_NAMESPACE": f"{namespace}-bare",
            **settings,
        }
        migrate(env)
        os.environ.update(env)
        get_settings.cache_clear()
        logs = Path(os.environ.get("BENCH_LOGS") or temp)
        logs.mkdir(parents=True, exist_ok=True)
        try:
            yield env, logs
        finally:
            from docqueue.db import get_engine

            get_engine().dispose()
            client = redis.Redis.from_url(os.environ["REDIS_URL"])
            keys = list(client.scan_iter(match=f"{namespace}*"))
            if keys:
                client.delete(*keys)


def start(command: str, env: dict, log: Path) -> subprocess.Popen:
    """Start `command` (a Procfile name, or a command line) in its own process group, output to `log`."""
    command = procfile_commands().get(command, command)
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=REPO_ROOT,
            env=with_local_scripts(env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, timeout: float = 40) -> None:
    """SIGTERM the process's group and wait; SIGKILL what is left after `timeout` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def running(*processes: subprocess.Popen, logs: Path | None = None) -> Iterator[None]:
    """Stop `processes` on the way out; on an error, print the tail of every log in `logs` first."""
    try:
        yield
    except BaseException:
        for log in sorted(logs.glob("*.log")) if logs else []:
            print(f"--- tail of {log.name} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        raise
    finally:
        for process in processes:
            stop(process)


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 600,
    interval: float = 0.02,
    what: str = "it",
    watch: Sequence[subprocess.Popen] = (),
):
    """Poll `predicate` every `interval` seconds until it returns something true; return that.

    Raises at once if a process in `watch` has exited: nothing would come of waiting.
    """
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        if any(process.poll() is not None for process in watch):
            raise RuntimeError(f"a process exited while waiting for {what}")
        time.sleep(interval)
    return result


def query(sql: str, **params):
    """The first column of the first row of `sql` (a fresh transaction each call, so it sees new commits)."""
    from docqueue.db import get_engine

    with get_engine().connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()


def make_user(email: str, **columns) -> tuple[int, str]:
    """A new user with `columns` set (e.g. concurrent_ocr_jobs); its id and API token."""
    from docqueue.accounts.users import create_user
    from docqueue.db import session_scope

    with session_scope() as session:
        user, token = create_user(session, email)
        for column, value in columns.items():
            setattr(user, column, value)
        return user.id, token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_web(base_url: str, timeout: float = 120) -> None:
    """Wait until the web answers /healthz with 200."""

    def healthy() -> bool:
        try:
            return requests.get(f"{base_url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=timeout, interval=0.5, what="the web to answer /healthz")


def worker_booted(since: float) -> bool:
    """Whether some worker process has sent a heartbeat since `since` (a Unix time): it has booted."""
    return bool(query("SELECT count(*) FROM worker_heartbeats WHERE last_seen_at > to_timestamp(:t)", t=since))


@contextmanager
def booted_worker(env: dict, logs: Path, worker_env: dict | None = None) -> Iterator[subprocess.Popen]:
    """The Procfile's worker (with `worker_env`, else `env`) and clock, booted; both stopped on the way out."""
    since = time.time()
    worker = start("worker", worker_env or env, logs / "worker.log")
    clock = start("clock", env, logs / "clock.log")
    with running(worker, clock, logs=logs):
        wait_for(lambda: worker_booted(since), timeout=180, interval=0.2, what="the worker to boot", watch=[worker])
        time.sleep(3)  # its PDF pool warms up after the first heartbeat
        yield worker


def print_medians(results: dict[str, list[float]], baseline: str, count: int, unit: str, title: str = "") -> None:
    """A table of each row's median seconds, `unit`s per second over `count`, and its time as a multiple of
    the `baseline` row's."""
    base = statistics.median(results[baseline])
    print(f"{title:34} {'seconds':>8} {unit + '/s':>9} {'x ' + baseline.split(',')[0]:>15}")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:34} {median:8.2f} {count / median:9.1f} {median / base:15.1f}")


#: Text for generated scans: varied, as real pages are, so Tesseract does real work on each.
PARAGRAPHS = (
    "Quarterly revenue grew across every region, driven by strong demand for renewable energy storage systems. "
    "The board approved a new research budget and asked management to report on supply chain risks.",
    "Municipal water treatment plants must monitor turbidity, chlorine residual and bacterial counts daily. "
    "Inspectors visited seven facilities in March and found minor documentation problems at two of them.",
    "The library will extend its opening hours during the examination period. Students may reserve study rooms "
    "online, borrow laptops at the front desk and request interlibrary loans without any charge.",
    "Mountain weather changes quickly, so hikers should carry waterproof clothing, a detailed map, enough water "
    "and a charged phone. Tell someone your planned route and the time you expect to return.",
)


def scanned_pdf(pages: int, dpi: int = 300, seed: int = 0) -> bytes:
    """An image-only PDF of `pages` letter pages of text rendered at `dpi` in grey, as a scanner makes them.

    Like `tests/support/scans.py`: no text layer, so every page goes to OCR. `seed` varies the text between documents.
    """
    import pymupdf

    scan = pymupdf.open()
    for number in range(pages):
        source = pymupdf.open()
        page = source.new_page(width=612, height=792)
        text = " ".join(PARAGRAPHS[(seed + number + k) % len(PARAGRAPHS)] for k in range(3))
        page.insert_textbox(pymupdf.Rect(54, 54, 558, 738), f"Page {number + 1}. {text}", fontsize=12)
        pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
        scan.new_page(width=612, height=792).insert_image(pymupdf.Rect(0, 0, 612, 792), pixmap=pixmap)
    return scan.tobytes(garbage=3, deflate=True)


#: A folder whose `sitecustomize` counts the statements of the processes that have it on PYTHONPATH.
STATEMENT_COUNTER = Path(__file__).resolve().parent / "statement_counter"


def read_statement_counts(folder: str) -> tuple[int, ...]:
    """(statements, COMMITs, BEGINs, other commands) summed over the processes counting into `folder`.

    Each counting process has a file `<pid>.count` of four little-endian 64-bit counters
    (see `statement_counter/sitecustomize.py`).
    """
    totals = [0, 0, 0, 0]
    for path in Path(folder).glob("*.count"):
        data = path.read_bytes()[:32]
        if len(data) == 32:
            totals = [total + value for total, value in zip(totals, struct.unpack("<4q", data))]
    return tuple(totals)


class PeakRss:
    """Samples the summed RSS of a process and all its descendants every `interval` s; `.peak` in bytes.

    `.peaks` holds each process's own peak, by pid. RSS counts the pages
    processes share (libraries, a fork's untouched memory) in each of them;
    `.peak_pss` is the peak of the summed PSS, which splits each shared page
    between its sharers: what the tree really holds.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peaks: dict[int, int] = {}
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                family = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = total_pss = 0
            for process in family:
                try:
                    memory = process.memory_full_info()
                except psutil.NoSuchProcess:
                    continue  # a child that exited between the listing and the reading
                total += memory.rss
                total_pss += memory.pss
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), memory.rss)
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, total_pss)
            self._stop.wait(self.interval)
