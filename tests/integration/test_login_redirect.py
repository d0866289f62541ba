"""After login a user lands where they were sent from (`next=`), but only on this site."""

from __future__ import annotations

import pytest

from tests.support.accounts import PASSWORD, log_in


@pytest.fixture
def client(no_csrf_app, make_user):
    make_user("back@example.com", password=PASSWORD, role="operator")
    return no_csrf_app.test_client()


def test_a_user_sent_to_log_in_from_the_admin_page_lands_back_there(client):
    sent = client.get("/admin?status=failed")
    assert sent.status_code == 302 and sent.location == "/login?next=%2Fadmin%3Fstatus%3Dfailed"
    form = client.get(sent.location).get_data(as_text=True)
    assert 'action="/login?next=/admin?status%3Dfailed"' in form  # the form posts it back
    landed = log_in(client, "back@example.com", query_string={"next": "/admin?status=failed"})
    assert (landed.status_code, landed.location) == (302, "/admin?status=failed")
    assert client.get(landed.location).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/admin",
        "//evil.example/admin",
        "/\\evil.example/admin",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "admin",
    ],
)
def test_a_next_that_leaves_the_site_is_ignored(client, target):
    landed = log_in(client, "back@example.com", query_string={"next": target})
    assert (landed.status_code, landed.location) == (302, "/")
