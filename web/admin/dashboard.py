"""The dashboard (`/admin`), its chart data, and the queue-wide switches."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_login import current_user

from docqueue.accounts.audit import recent_audit
from docqueue.ai.breakers import SERVICES, breaker_states, close_by_hand
from docqueue.operator_commands import operator_change
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue.dashboard import EXACT_COUNT_LIMIT
from docqueue.queue.history import completion_series
from docqueue.queue.pausing import held_work, hold, holdable, release
from docqueue.wording import counted
from web.admin.blueprint import bp
from web.admin.common import current_dashboard, form_int, sees_everything
from web.auth import role_required
from web.extensions import db
from web.htmx import page_or_partial
from web.params import query_choice

#: The chart spans the page offers, in hours.
CHART_SPANS = (1, 24)


@bp.get("")
@role_required("viewer")
def dashboard():
    """Live counts, ETA, workers, warnings, charts and the audit log; an htmx poll gets the figures only."""
    return page_or_partial(
        "admin/dashboard.html",
        "admin/_figures.html",
        dashboard=current_dashboard(),
        audit=recent_audit(db.session) if sees_everything() else [],
        can_act=current_user.has_role("operator"),
        exact_limit=EXACT_COUNT_LIMIT,
        breakers=[state for state in breaker_states().values() if state.shown],
        holdable=holdable(STAGE_NAMES),
        held={(held.scope, held.name): held for held in held_work(db.session)} if sees_everything() else {},
    )


@bp.app_template_filter("clock_time")
def clock_time(value: datetime) -> str:
    """A time of today as people say it, `15:11 UTC` (the date only when it is not today)."""
    value = value.astimezone(UTC)
    return f"{value:%H:%M} UTC" if value.date() == datetime.now(UTC).date() else f"{value:%Y-%m-%d %H:%M} UTC"


@bp.get("/series.json")
@role_required("operator")
def series():
    """Completions and average wait per bucket for the last `hours` (1 or 24), for the charts."""
    hours = query_choice("hours", 1, CHART_SPANS)
    data = completion_series(db.session, hours)
    return jsonify(times=data.times, completed=data.completed, avg_wait_seconds=data.avg_wait_seconds)


@bp.post("/queue/pause")
@role_required("operator")
def pause_admission():
    with operator_change(db.session, current_user, lets_work_in=False) as operator:
        operator.set_admission_paused(True)
    flash("Admission paused: pending jobs wait; running ones finish.", "info")
    return redirect(url_for("admin.dashboard"))


@bp.post("/queue/resume")
@role_required("operator")
def resume_admission():
    with operator_change(db.session, current_user, lets_work_in=True) as operator:
        operator.set_admission_paused(False)
    flash("Admission resumed.", "info")
    return redirect(url_for("admin.dashboard"))


@bp.post("/queue/clear-completed")
@role_required("operator")
def clear_completed():
    """Delete completed jobs older than `days` (their documents stay)."""
    days = form_int("days", 0, 3650)
    with operator_change(db.session, current_user, lets_work_in=False) as operator:
        cleared = operator.clear_completed(days)
    flash(f"Cleared {counted(cleared, 'completed job')} older than {counted(days, 'day')}.", "info")
    return redirect(url_for("admin.dashboard"))


@bp.post("/breakers/<name>/close")
@role_required("operator")
def close_breaker(name: str):
    """Let calls to an outside service through now, before its breaker's reset time (audited)."""
    if name not in SERVICES:
        abort(404, description=f"no outside service {name!r}")
    with operator_change(db.session, current_user, lets_work_in=True):  # the work it held may go now
        close_by_hand(db.session, current_user, name)
    flash(f"Trying the {SERVICES[name]} again now: its waiting documents go ahead.", "info")
    return redirect(url_for("admin.dashboard"))


@bp.post("/queue/<any(hold, release):verb>")
@role_required("operator")
def hold_or_release(verb: str):
    """Hold (or resume) one lane or one stage: its waiting work stays put, running work finishes."""
    scope, name = request.form.get("scope", ""), request.form.get("name", "")
    try:
        # A release lets what waited for it go now.
        with operator_change(db.session, current_user, lets_work_in=verb == "release"):
            changed = (hold if verb == "hold" else release)(db.session, current_user, scope, name, STAGE_NAMES)
    except ValueError as error:
        abort(400, description=str(error))
    if not changed:
        flash(f"The {scope} {name} was {'held' if verb == 'hold' else 'not held'} already.", "info")
    elif verb == "hold":
        flash(f"Holding the {scope} {name}: its waiting work stays put; running work finishes.", "info")
    else:
        flash(f"Resumed the {scope} {name}.", "info")
    return redirect(url_for("admin.dashboard"))
