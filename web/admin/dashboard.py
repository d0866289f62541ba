"""The dashboard (`/admin`), its chart data, and the queue-wide switches."""

from __future__ import annotations

from flask import flash, jsonify, redirect, url_for
from flask_login import current_user

from docqueue.accounts.audit import recent_audit
from docqueue.ai.breakers import breaker_states
from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.queue.dashboard import EXACT_COUNT_LIMIT
from docqueue.queue.history import completion_series
from docqueue.queue.operator import OperatorActions
from docqueue.wording import counted
from web.admin.blueprint import bp
from web.admin.common import current_dashboard, form_int, page_or_partial, sees_everything
from web.auth import role_required
from web.extensions import db
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
        breakers=breaker_states(),
    )


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
    OperatorActions(db.session, current_user).set_admission_paused(True)
    db.session.commit()
    flash("Admission paused: pending jobs wait; running ones finish.", "info")
    return redirect(url_for("admin.dashboard"))


@bp.post("/queue/resume")
@role_required("operator")
def resume_admission():
    OperatorActions(db.session, current_user).set_admission_paused(False)
    db.session.commit()
    nudge_dispatcher(db.session)
    flash("Admission resumed.", "info")
    return redirect(url_for("admin.dashboard"))


@bp.post("/queue/clear-completed")
@role_required("operator")
def clear_completed():
    """Delete completed jobs older than `days` (their documents stay)."""
    days = form_int("days", 0, 3650)
    cleared = OperatorActions(db.session, current_user).clear_completed(days)
    db.session.commit()
    flash(f"Cleared {counted(cleared, 'completed job')} older than {counted(days, 'day')}.", "info")
    return redirect(url_for("admin.dashboard"))
