"""`/admin/ingests`: every ingest run (CLI or folder upload) with its counts, and its rejected files as CSV.

Admins only. Who counts as an admin is decided by `can_view_ingest_runs`
alone, so the roles of the admin pages can replace it in one place.
"""

from __future__ import annotations

import io

from flask import Blueprint, Response, abort, render_template
from flask_login import current_user, login_required

from docqueue.ingest.runs import recent_runs, run_rejections, write_rejections_csv
from docqueue.models import IngestRun
from web.extensions import db

bp = Blueprint("ingest_admin", __name__, url_prefix="/admin/ingests")


def can_view_ingest_runs(user) -> bool:
    """Whether `user` may see every user's ingest runs."""
    return bool(getattr(user, "is_admin", False))


@bp.before_request
@login_required
def admins_only():
    if not can_view_ingest_runs(current_user):
        abort(403)


@bp.get("/")
def index():
    """The newest runs, newest first."""
    return render_template("ingest_admin/runs.html", runs=recent_runs(db.session))


@bp.get("/<int:run_id>/rejected.csv")
def rejected_csv(run_id: int):
    """The run's rejected files and reasons, as the CLI leaves them beside itself."""
    if db.session.get(IngestRun, run_id) is None:
        abort(404)
    body = io.StringIO()
    write_rejections_csv(((row.path, row.reason) for row in run_rejections(db.session, run_id)), body)
    return Response(
        body.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="ingest-{run_id}-rejected.csv"'},
    )
