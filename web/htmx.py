"""htmx in one place: one URL serves the full page, or only its partial when htmx asks (`HX-Request`).

A page that polls renders its partial with the polling trigger while there is something to watch and
without it once there is not: swapping that in ends the polling, with no script.
"""

from __future__ import annotations

from flask import Response, make_response, render_template, request


def is_htmx() -> bool:
    """Whether this request comes from htmx (a poll or a swap), not a full page load."""
    return bool(request.headers.get("HX-Request"))


def page_or_partial(template: str, partial: str, **context) -> Response:
    """The full page, or only `partial` for an htmx request: the same view serves both."""
    response = make_response(render_template(partial if is_htmx() else template, **context))
    # One URL, two bodies: caches must not hand the fragment to a full page load.
    response.vary.add("HX-Request")
    return response


def redirect_whole_page_for_htmx(response: Response) -> Response:
    """Turn a redirect answering an htmx request into `HX-Redirect`.

    The browser follows a plain redirect inside the XHR, so a poll whose
    session has ended would swap the login page into the table body.
    """
    if is_htmx() and response.location and 300 <= response.status_code < 400:
        return Response(status=204, headers={"HX-Redirect": response.location})
    return response
