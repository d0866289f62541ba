"""The admin blueprint and its error pages; each view module registers its routes on `bp`."""

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from web.htmx import redirect_whole_page_for_htmx

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.after_request(redirect_whole_page_for_htmx)


@bp.errorhandler(400)
@bp.errorhandler(403)
@bp.errorhandler(404)
def refused(error: HTTPException):
    """A refused or unknown admin request, said on a page (an htmx request gets the bare message)."""
    titles = {400: "Request refused", 403: "Not allowed", 404: "Not found"}
    return render_template("error.html", title=titles[error.code], message=error.description), error.code
