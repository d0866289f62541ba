"""`/admin/ingests`: every ingest run (CLI or folder upload) with its counts, and its rejected files as CSV.

Operators and admins: like the rest of `/admin`, they watch the whole queue.
"""

from __future__ import annotations

import io

from flask import Blueprint, Response, abort, render_template

from docqueue.ingest.runs import recent_runs, run_rejections, write_rejections_csv
from docqueue.models import IngestRun
from web.auth import role_required
from web.extensions import db

bp = Blueprint("ingest_admin", __name__, url_prefix="/admin/ingests")


@bp.before_request
@role_required("operator")
def operators_only():
    """Every view here is for operators and admins."""


@bp.get("/")
def index():
    """The newest runs, newest first."""
    return render_template("ingest_admin/runs.html", runs=recent_runs(db.session))


@bp.get("/<id:run_id>/rejected.csv")
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
