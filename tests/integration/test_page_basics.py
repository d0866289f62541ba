"""Small things a first visit notices: the tab's icon loads, and times are shown to the second, in UTC."""

from __future__ import annotations

import re

from tests.support.factories import add_document, make_pdf


def test_the_favicon_link_resolves_and_document_times_show_seconds(app, make_user, session):
    user_id, _ = make_user("pages@example.com", password="pw")
    add_document(session, user_id, make_pdf(["timed"]))
    app.config.update(WTF_CSRF_ENABLED=False)
    browser = app.test_client()
    assert browser.post("/login", data={"email": "pages@example.com", "password": "pw"}).status_code == 302
    page = browser.get("/").get_data(as_text=True)
    icon = re.search(r'<link rel="icon" href="([^"]+)"', page).group(1)
    answer = browser.get(icon)
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml" and answer.data.startswith(b"<svg")
    answer.close()
    assert re.search(r'<td class="uploaded"[^>]*><time [^>]*>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', page)
