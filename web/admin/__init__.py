"""The admin pages under /admin: dashboard, jobs and their actions, failures, accounts.

Every view checks its role on the server (`web.auth.role_required`):
viewers see their own jobs and cannot act, operators see and steer the
whole queue, admins also manage accounts. Views stay thin: they parse and
validate the request, call one domain command, commit, and render.
"""

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from web.pages import redirect_whole_page_for_htmx

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.after_request(redirect_whole_page_for_htmx)


@bp.errorhandler(400)
@bp.errorhandler(403)
@bp.errorhandler(404)
def refused(error: HTTPException):
    """A refused or unknown admin request, said on a page (an htmx request gets the bare message)."""
    titles = {400: "Request refused", 403: "Not allowed", 404: "Not found"}
    return render_template("error.html", title=titles[error.code], message=error.description), error.code


from web.admin import dashboard, jobs, users  # noqa: E402, F401  (after bp: their routes register on it)
