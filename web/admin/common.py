"""Helpers the admin views share: who sees what, the shared dashboard reading, request parsing."""

from __future__ import annotations

from flask import abort, current_app, request
from flask_login import current_user

from docqueue.dispatch.messages import held_messages
from docqueue.models import MAX_ID
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue.dashboard import Dashboard, read_dashboard
from web.extensions import db
from web.params import whole_number

#: Most job ids one action takes from a form.
MAX_SELECTED = 1000


def sees_everything() -> bool:
    """Operators and admins watch the whole queue; a viewer sees only their own jobs."""
    return current_user.has_role("operator")


def scope_owner_id() -> int | None:
    """None (every job) for operators and admins, the viewer's own id otherwise."""
    return None if sees_everything() else current_user.id


def current_dashboard() -> Dashboard:
    """The whole queue's shared reading (refreshed every two seconds at most), or the viewer's own figures."""
    if not sees_everything():
        return read_dashboard(db.session, STAGE_NAMES, current_user.id)
    cache = current_app.extensions["dashboard_snapshot"]
    return cache.get(lambda: read_dashboard(db.session, STAGE_NAMES, None, held_messages))


def selected_job_ids() -> list[int]:
    """The `job_id` values of a form, as ids; 400 for a malformed one or too many."""
    raw = request.form.getlist("job_id")
    if len(raw) > MAX_SELECTED:
        abort(400, description=f"select at most {MAX_SELECTED} jobs at once")
    job_ids = [whole_number(value, 1, MAX_ID) for value in raw]
    if None in job_ids:
        abort(400, description="job ids must be whole numbers")
    if not job_ids:
        abort(400, description="select at least one job")
    return job_ids


def form_int(name: str, low: int, high: int) -> int:
    """A whole-number form field within [low, high]; 400 naming it otherwise."""
    value = whole_number(request.form.get(name), low, high)
    if value is None:
        abort(400, description=f"{name} must be a whole number from {low} to {high}")
    return value
