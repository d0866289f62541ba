"""The jobs list with its filters, one job's detail, the actions on jobs, and failures grouped by error."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from docqueue.documents import get_document
from docqueue.models import MAX_ID, Document
from docqueue.operator_commands import operator_change
from docqueue.pipeline import PIPELINE, STAGE_NAMES
from docqueue.queue.failures import failure_groups, scheduled_retries
from docqueue.queue.job_listing import (
    PAGE_SIZE,
    WINDOWS,
    FilterError,
    JobFilter,
    document_jobs,
    job_detail,
    list_jobs,
)
from docqueue.statuses import OPERATIONS, QueueStatus
from docqueue.wording import counted
from web.admin.blueprint import bp
from web.admin.common import form_int, scope_owner_id, selected_job_ids
from web.auth import local_path, role_required
from web.extensions import db
from web.htmx import page_or_partial
from web.params import query_int

#: Form action name -> what the flash says was done.
JOB_ACTIONS = {"retry": "Retried", "cancel": "Cancelled", "delete": "Deleted", "priority": "Reprioritised"}


def _filter_or_400(args) -> JobFilter:
    try:
        return JobFilter.from_args(args, STAGE_NAMES)
    except FilterError as error:
        abort(400, description=str(error))


@bp.get("/jobs")
@role_required("viewer")
def jobs():
    """Jobs newest first, filtered by the query string; `before=<id>` pages on; htmx polls get the rows."""
    job_filter = _filter_or_400(request.args)
    before = query_int("before", None, 1, MAX_ID)
    rows = list_jobs(db.session, job_filter, owner_id=scope_owner_id(), before=before, limit=PAGE_SIZE + 1)
    return page_or_partial(
        "admin/jobs.html",
        "admin/_job_rows.html",
        rows=rows[:PAGE_SIZE],
        next_before=rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        job_filter=job_filter,
        before=before,
        statuses=tuple(QueueStatus),
        stages=[stage.name for stage in PIPELINE],
        operations=OPERATIONS,
        windows=WINDOWS,
        can_act=current_user.has_role("operator"),
    )


@bp.get("/jobs/<id:job_id>")
@role_required("viewer")
def job(job_id: int):
    """One job: its timeline, attempts and errors, lease and worker, and a link to its document."""
    detail = job_detail(db.session, job_id, owner_id=scope_owner_id())
    if detail is None:
        abort(404, description=f"no job {job_id}")
    return render_template("admin/job.html", detail=detail, can_act=current_user.has_role("operator"))


@bp.get("/documents/<id:document_id>")
@role_required("viewer")
def document(document_id: int):
    """A document's details and its jobs (a viewer: their own documents only)."""
    owner_id = scope_owner_id()
    found = (
        db.session.get(Document, document_id) if owner_id is None else get_document(db.session, owner_id, document_id)
    )
    if found is None:
        abort(404, description=f"no document {document_id}")
    return render_template("admin/document.html", document=found, jobs=document_jobs(db.session, document_id))


@bp.post("/jobs/action")
@role_required("operator")
def job_action():
    """Retry, cancel, delete or reprioritise the selected jobs (one or many)."""
    action = request.form.get("action", "")
    if action not in JOB_ACTIONS:
        abort(400, description=f"action must be one of {', '.join(JOB_ACTIONS)}")
    job_ids = selected_job_ids()
    held = 0
    # A retry admits the retried work now, not at the next clock tick.
    with operator_change(db.session, current_user, lets_work_in=action == "retry") as operator:
        if action == "priority":
            done = operator.set_priority(job_ids, form_int("priority", 0, 100))
        elif action == "retry":
            anyway = _retry_anyway()
            held = 0 if anyway else operator.permanent_among(job_ids)
            done = operator.retry(job_ids, anyway=anyway)
        else:
            done = getattr(operator, action)(job_ids)
    skipped = len(job_ids) - done - held
    note = f" ({skipped} skipped: not in a state that allows it)" if skipped > 0 else ""
    flash(f"{JOB_ACTIONS[action]} {counted(done, 'job')}{note}.", "info")
    if held:
        flash(_held_message(held), "error")
    return redirect(local_path(request.form.get("back")) or url_for("admin.jobs"))


def _retry_anyway() -> bool:
    """Whether the operator ticked "retry anyway" for failures that would fail again."""
    return request.form.get("anyway") == "on"


def _held_message(held: int) -> str:
    return (
        f"Not retried: {counted(held, 'job')} failed for good (the file is the problem, or a bug) and would fail "
        "the same way again. Read why on the failures page and tick “retry anyway” to retry them regardless."
    )


@bp.post("/jobs/retry-matching")
@role_required("operator")
def retry_matching_preview():
    """Step one of "retry all failed matching the filter": freeze the ids and ask for confirmation."""
    job_filter = _filter_or_400(request.form)
    with operator_change(db.session, current_user, lets_work_in=False) as operator:
        preview = operator.preview_retry(job_filter)
    return render_template("admin/retry_preview.html", preview=preview, job_filter=job_filter)


@bp.post("/jobs/retry-matching/confirm")
@role_required("operator")
def retry_matching_confirm():
    """Step two: retry exactly the jobs the preview froze (those still failed)."""
    try:
        with operator_change(db.session, current_user, lets_work_in=True) as operator:
            retried = operator.retry_frozen(request.form.get("token", ""), anyway=_retry_anyway())
    except LookupError as error:
        flash(str(error), "error")
        return redirect(url_for("admin.jobs"))
    flash(f"Retried {counted(retried, 'job')}.", "info")
    return redirect(url_for("admin.jobs"))


@bp.get("/failures")
@role_required("operator")
def failures():
    """Failed jobs grouped by error, "will fail again" apart from "may pass now", and the retries under way."""
    groups = failure_groups(db.session)
    return render_template(
        "admin/failures.html",
        permanent=[group for group in groups if group.will_fail_again],
        transient=[group for group in groups if not group.will_fail_again],
        retries=scheduled_retries(db.session),
    )


@bp.post("/failures/<any(retry, discard):verb>")
@role_required("operator")
def failure_group_action(verb: str):
    stage, error_message = request.form.get("stage", ""), request.form.get("error_message", "")
    if "\x00" in stage + error_message:  # no stored group has one, and Postgres would refuse it
        abort(400, description="a failure group's stage and error cannot contain NUL characters")
    anyway = _retry_anyway()
    with operator_change(db.session, current_user, lets_work_in=verb == "retry") as operator:
        if verb == "retry":
            done = operator.retry_group(stage, error_message, anyway=anyway)
        else:
            done = operator.discard_group(stage, error_message)
    flash(f"{'Retried' if verb == 'retry' else 'Discarded'} {counted(done, 'job')} of that group.", "info")
    if verb == "retry" and not done and not anyway:
        flash(_held_message(len(operator.group_job_ids(stage, error_message))), "error")
    return redirect(url_for("admin.failures"))
