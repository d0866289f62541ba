"""Upload latency under an open-loop load, and the saturation rate against a bare bytea INSERT.

The Procfile's `web` (gunicorn), `worker` and `clock` run as real processes
on a scratch database. Each upload is a valid ~1 MB PDF (one page: a line of
text, so OCR is skipped, over an embedded image of random noise, which does
not compress), its bytes made distinct per upload by a trailing comment;
`POST /api/documents` as a user with an API token.

1. Open loop: request i is sent at t0 + i/RATE whatever the earlier ones
   answered, for SECONDS, from a thread pool large enough never to hold one
   back. Latency counts from each request's scheduled time, so a client
   that fell behind would show in it. p50, p99, max and the errors (anything
   but 202, or no answer). Twice: with the worker and clock processing the
   uploads meanwhile (everything on the same two cores), then with them
   stopped (the upload path alone).
2. Saturation, closed loop: CLIENTS clients upload one after another as fast
   as they can for SATURATION_SECONDS; MB/s of 202 answers. The worker and
   clock are stopped first (the open loop's backlog would be processed
   meanwhile, and the baseline runs without them), so this is the upload
   path alone: HTTP, multipart parsing, the document, its blob chunks and
   queue row in one transaction, and the dispatcher nudge.
   Baseline in the same run: CLIENTS threads, one Postgres connection each,
   each INSERTing the same bytes into a bare `bytea` table stored as
   `blob_chunks` is (uncompressed), autocommit, for as long.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/upload_latency.py [RATE] [SECONDS] [CLIENTS] [SATURATION_SECONDS]
"""

from __future__ import annotations

import http.client
import io
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy
import psycopg
import pymupdf
from benchkit import free_port, make_user, running, scratch_environment, start, stop, wait_for_web
from PIL import Image


def noise_pdf(target_bytes: int = 1_000_000) -> bytes:
    """A valid one-page PDF of about `target_bytes`: a line of text over an image of random noise."""
    side = int((target_bytes / 3) ** 0.5)  # RGB noise stays about 3 bytes a pixel however it is compressed
    pixels = numpy.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=numpy.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(png, "PNG")
    document = pymupdf.open()
    page = document.new_page(width=612, height=792)
    page.insert_image(pymupdf.Rect(36, 100, 576, 640), stream=png.getvalue())
    page.insert_text((72, 72), "Upload latency benchmark: a page with a text layer and a noise image.", fontsize=12)
    return document.tobytes(garbage=3)


def distinct(data: bytes, n: int) -> bytes:
    """`data` with a comment after its end: still the same valid PDF, but its own bytes (and sha256)."""
    return data + b"%% upload %d\n" % n


class Uploader:
    """Sends uploads over one keep-alive connection per thread, each body built by joining bytes.

    The multipart body is written out once around a placeholder for the
    file, so a send costs the client a join and a socket write: the load
    generator shares the machine's two cores with what it measures, and
    `requests`' own multipart encoding of 1 MB per call held it back.
    """

    BOUNDARY = "docqueuebenchboundary"

    def __init__(self, base_url: str, token: str, data: bytes) -> None:
        self.host, self.port = base_url.removeprefix("http://").split(":")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={self.BOUNDARY}",
        }
        self.head = (
            f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="upload.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.BOUNDARY}--\r\n".encode()
        self.data = data
        self.local = threading.local()

    def send(self, n: int) -> bool:
        """Upload copy `n`; whether the answer was 202."""
        body = b"".join((self.head, distinct(self.data, n), self.tail))
        for _ in range(2):  # a keep-alive connection the server closed is reopened once
            if not hasattr(self.local, "connection"):
                self.local.connection = http.client.HTTPConnection(self.host, int(self.port), timeout=120)
            try:
                self.local.connection.request("POST", "/api/documents", body=body, headers=self.headers)
                response = self.local.connection.getresponse()
                response.read()
                return response.status == 202
            except (OSError, http.client.HTTPException):
                self.local.connection.close()
                del self.local.connection
        return False


def open_loop(uploader: Uploader, rate: float, seconds: float) -> tuple[list[float], int, float]:
    """Latencies (s, from each scheduled send) of RATE uploads a second for SECONDS, errors, worst send lag."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    lag = 0.0
    lock = threading.Lock()

    def one(n: int, scheduled: float) -> None:
        nonlocal errors, lag
        began = time.perf_counter()
        ok = uploader.send(n)
        finished = time.perf_counter()
        with lock:
            lag = max(lag, began - scheduled)
            latencies.append(finished - scheduled)
            errors += not ok

    with ThreadPoolExecutor(max_workers=min(total, max(32, int(rate * 10)))) as pool:
        t0 = time.perf_counter() + 0.1
        for n in range(total):
            scheduled = t0 + n / rate
            time.sleep(max(0.0, scheduled - time.perf_counter()))
            pool.submit(one, n, scheduled)
    return latencies, errors, lag


def closed_loop(clients: int, seconds: float, send) -> tuple[int, float]:
    """`clients` threads each calling `send(n)` back to back for `seconds`; (successes, elapsed)."""
    done = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            done[index] += bool(send(index * 1_000_000 + n))
            n += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - started


def bare_inserts(database_url: str, data: bytes, clients: int, seconds: float) -> tuple[int, float]:
    """The baseline: INSERT the same bytes into a bytea table, one connection per client thread."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_blobs (id bigserial PRIMARY KEY, data bytea NOT NULL)")
        # Stored as `blob_chunks` stores file bytes (migration 0016): without pglz's attempt to compress them.
        connection.execute("ALTER TABLE bench_blobs ALTER COLUMN data SET STORAGE EXTERNAL")
    connections = [psycopg.connect(database_url, autocommit=True) for _ in range(clients)]

    def send(n: int) -> bool:
        connections[n // 1_000_000].execute("INSERT INTO bench_blobs (data) VALUES (%b)", [distinct(data, n)])
        return True

    try:
        return closed_loop(clients, seconds, send)
    finally:
        for connection in connections:
            connection.close()


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 40
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    saturation_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 10
    data = noise_pdf()
    with scratch_environment("upload") as (env, logs):
        _, token = make_user("uploader@bench")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        web = start("web", {**env, "PORT": str(port)}, logs / "web.log")
        worker = start("worker", env, logs / "worker.log")
        clock = start("clock", env, logs / "clock.log")
        with running(web, worker, clock, logs=logs):
            wait_for_web(base_url)
            uploader = Uploader(base_url, token, data)
            assert uploader.send(-1), "a first upload was refused"
            time.sleep(5)  # let the worker boot and process that one: the open loop meets a warm system
            loops = {"web, worker and clock (uploads processed meanwhile)": open_loop(uploader, rate, seconds)}
            stop(worker)
            stop(clock)
            time.sleep(2)
            loops["web alone (worker and clock stopped)"] = open_loop(uploader, rate, seconds)
            uploads, upload_elapsed = closed_loop(clients, saturation_seconds, uploader.send)
        bare, bare_elapsed = bare_inserts(
            env["DATABASE_URL"].replace("+psycopg", ""), data, clients, saturation_seconds
        )

    size_mb = len(data) / 1e6
    print(f"\nopen loop: {rate:g} uploads/s of {size_mb:.2f} MB for {seconds:g} s ({int(rate * seconds)} sent)")
    print(f"{'':52} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'errors':>7} {'worst send lag s':>17}")
    for name, (latencies, errors, lag) in loops.items():
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"{name:52} {statistics.median(latencies):8.3f} {p99:8.3f} {latencies[-1]:8.3f} {errors:7d} {lag:17.3f}")
    print(f"\nsaturation: {clients} clients, closed loop, {saturation_seconds:g} s each (worker and clock stopped)")
    print(f"{'':40} {'count':>7} {'per s':>7} {'MB/s':>7} {'x baseline':>11}")
    bare_rate = bare * size_mb / bare_elapsed
    for name, count, elapsed in (
        ("bare INSERT into bytea (baseline)", bare, bare_elapsed),
        ("POST /api/documents (202 answers)", uploads, upload_elapsed),
    ):
        mb_s = count * size_mb / elapsed
        print(f"{name:40} {count:7d} {count / elapsed:7.1f} {mb_s:7.1f} {mb_s / bare_rate:11.2f}")


if __name__ == "__main__":
    main()
