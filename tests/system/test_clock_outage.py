"""The clock says once that the database is gone and once that it is back, with no traceback every tick
(issue 18): the Procfile's real clock process against a private Postgres that is stopped and started."""

from __future__ import annotations

import time

from tests.support.processes import wait_until


def test_the_clock_reports_a_database_outage_once_and_its_end(procfile, private_postgres, broker):  # noqa: F811
    clock = procfile("clock", DATABASE_URL=private_postgres.url, DISPATCH_INTERVAL_SECONDS=1)
    wait_until(lambda: "clock started" in clock.log(), timeout=60, message="the clock to start")
    time.sleep(2)  # a few good ticks
    private_postgres.stop("immediate")
    wait_until(lambda: "cannot be reached" in clock.log(), timeout=30, message="the clock to notice")
    time.sleep(5)  # five more ticks with the database gone
    private_postgres.start()
    wait_until(lambda: "is reachable again" in clock.log(), timeout=30, message="the clock to notice it is back")
    time.sleep(2)
    assert clock.stop() == 0
    log = clock.log()
    assert "Traceback" not in log, log
    assert log.count("cannot be reached") == 1, log
    outage = next(line for line in log.splitlines() if "cannot be reached" in line)
    assert "the database (Postgres) cannot be reached" in outage
    assert "the clock retries every 1 s and says nothing more until it is back" in outage
    assert log.count("the database (Postgres) is reachable again") == 1, log
