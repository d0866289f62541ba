"""`GET /metrics`: the dashboard's figures in Prometheus's text format.

Protected like the API: `Authorization: Bearer <token>` with METRICS_TOKEN
(for a Prometheus scrape job's `authorization` setting) or the API token of
an operator or admin. Figures come from the same shared snapshot the
dashboard reads, so scrapes stay cheap at any table size.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from docqueue.ai.breakers import breaker_states
from docqueue.dispatch.messages import held_messages
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue.backlog import lane_backlog
from docqueue.queue.dashboard import read_dashboard
from docqueue.queue.history import stage_timings
from docqueue.settings import get_settings
from web.auth import api_error, bearer_user
from web.extensions import db

bp = Blueprint("metrics", __name__)


def _authorised() -> bool:
    expected = get_settings().metrics_token
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode()):
        return True
    user = bearer_user()
    return user is not None and user.has_role("operator")


class _QueueCollector:
    """Builds every family from one dashboard reading and the recent stage timings."""

    def __init__(self, dashboard, timings, breakers, backlog) -> None:
        self.dashboard, self.timings, self.breakers, self.backlog = dashboard, timings, breakers, backlog

    def collect(self):
        d = self.dashboard
        jobs = GaugeMetricFamily("docqueue_jobs", "Jobs by status (estimated past a threshold)", labels=["status"])
        estimated = GaugeMetricFamily(
            "docqueue_jobs_estimated", "1 when that status's count is an estimate", labels=["status"]
        )
        for status, count in d.statuses.items():
            jobs.add_metric([status], count.value)
            estimated.add_metric([status], int(count.estimated))
        live = GaugeMetricFamily("docqueue_stage_jobs", "Live jobs by stage and status", labels=["stage", "status"])
        for stage, by_status in d.stages.items():
            for status, count in by_status.items():
                live.add_metric([stage, status], count)
        yield from (jobs, estimated, live)
        for name, help_text, value in (
            ("docqueue_completed_today", "Jobs completed today (UTC)", d.completed_today),
            ("docqueue_wait_minutes_avg", "Average wait from upload to first claim, today", d.avg_wait_minutes),
            ("docqueue_oldest_pending_minutes", "Age of the oldest job waiting", d.oldest_pending_minutes),
            (
                "docqueue_completed_per_minute",
                "Completions per minute over the last 15 minutes",
                d.completed_per_minute,
            ),
            ("docqueue_admission_paused", "1 while an operator has paused admission", int(d.admission_paused)),
            ("docqueue_warnings", "Warnings the dashboard shows", len(d.warnings)),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)
        heartbeat = GaugeMetricFamily(
            "docqueue_worker_heartbeat_age_seconds",
            "Seconds since each worker process's last heartbeat",
            labels=["worker"],
        )
        for worker in d.workers:
            heartbeat.add_metric([worker.worker_id], worker.age_seconds)
        yield heartbeat
        duration = GaugeMetricFamily(
            "docqueue_stage_duration_seconds_avg",
            "Average attempt duration per stage, last 15 minutes",
            labels=["stage"],
        )
        attempts = GaugeMetricFamily(
            "docqueue_stage_attempts", "Attempts that ended per stage, last 15 minutes", labels=["stage", "outcome"]
        )
        for timing in self.timings:
            duration.add_metric([timing.stage], timing.avg_seconds)
            attempts.add_metric([timing.stage, "ok"], timing.attempts - timing.failed)
            attempts.add_metric([timing.stage, "failed"], timing.failed)
        yield from (duration, attempts)
        breaker = GaugeMetricFamily(
            "docqueue_breaker_open", "1 while an outside service's circuit breaker is open", labels=["breaker", "state"]
        )
        for name, state in self.breakers.items():
            breaker.add_metric([name, state.state], int(state.state == "open"))
        yield breaker
        yield from self._scaling()

    def _scaling(self):
        """What an autoscaler scales workers on (README, "Autoscaling workers")."""
        families = [
            ("docqueue_backlog_documents", "Unfinished documents (waiting or running) per lane", "documents"),
            ("docqueue_backlog_waiting_documents", "Documents no worker has started yet per lane", "waiting"),
            ("docqueue_backlog_seconds", "Estimated worker seconds to finish the backlog per lane", "seconds"),
            ("docqueue_oldest_wait_seconds", "Age of the oldest waiting document per lane", "oldest_wait_seconds"),
        ]
        for name, help_text, attribute in families:
            family = GaugeMetricFamily(name, help_text, labels=["lane"])
            for lane, backlog in self.backlog.items():
                family.add_metric([lane], getattr(backlog, attribute))
            yield family


@bp.get("/metrics")
def metrics():
    if not _authorised():
        return api_error(401, "metrics need 'Authorization: Bearer <METRICS_TOKEN or an operator's API token>'")
    cache = current_app.extensions["dashboard_snapshot"]
    dashboard = cache.get(lambda: read_dashboard(db.session, STAGE_NAMES, None, held_messages))
    registry = CollectorRegistry(auto_describe=False)
    timings = stage_timings(db.session)
    registry.register(
        _QueueCollector(dashboard, timings, breaker_states(), lane_backlog(db.session, timings, STAGE_NAMES))
    )
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
