"""What `docqueue ingest` shows an operator: the progress bar on a terminal and the rejected-files CSV."""

from __future__ import annotations

import os
import re

from tests.support.ingest import many_files, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = re.compile(
    r"ingest ━+ (?P<read>[\d,]+)/(?P<total>[\d,]+) files (?P<rate>[\d,]+) files/s "
    r"(?P<bytes>[\d.]+)/(?P<bytes_total>[\d.]+) [kMG]?B (?P<speed>[\d.]+ [kMG]?B/s) (?P<eta>\d+:\d\d:\d\d)$"
)


def test_the_progress_bar_counts_files_and_bytes_with_their_rates(tmp_path, make_user):
    make_user("bar@example.com")
    root = many_files(tmp_path / "bulk", 300)
    # On a terminal (rich's TTY_COMPATIBLE) rich redraws the bar as it moves; one batch holds all 300 files.
    result = run_cli(
        root, "--user", "bar@example.com", cwd=tmp_path, env={**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "160"}
    )
    frames = [line.strip() for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
    last = BAR.match(frames[-1])
    # A bar moved only at commits would have one sample for its speed: "?" in place of bytes/s.
    assert last, frames
    assert int(last["read"].replace(",", "")) == int(last["total"].replace(",", "")) == 300
    assert last["bytes"] == last["bytes_total"]
    assert int(last["rate"].replace(",", "")) > 0
    assert "added 300 documents" in result.stdout and "300 of 300 files done" in result.stdout
