"""Browser pages: the upload form and the user's documents with live status."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from docqueue.documents import list_documents
from web.extensions import db

bp = Blueprint("pages", __name__)


@bp.get("/")
@login_required
def index():
    return render_template("index.html", documents=list_documents(db.session, current_user.id))
