"""The admin pages under /admin: dashboard, jobs and their actions, failures, accounts.

Every view checks its role on the server (`web.auth.role_required`):
viewers see their own jobs and cannot act, operators see and steer the
whole queue, admins also manage accounts. Views stay thin: they parse and
validate the request, call one domain command, commit, and render.
"""

from web.admin import dashboard, jobs, users  # noqa: F401  (importing them registers their routes)
from web.admin.blueprint import bp

__all__ = ["bp"]
