"""`docqueue user set-password`, `token` and `list` on the real database (the test run's own)."""

from __future__ import annotations

from click.testing import CliRunner

from docqueue.accounts.users import user_for_login, user_for_token
from docqueue.cli import main


def test_set_password_prompts_twice_and_replaces_the_old_one(test_env, make_user, session):
    make_user("forgetful@example.com", password="old password")
    result = CliRunner().invoke(
        main, ["user", "set-password", "Forgetful@Example.com"], input="new password\nnew password\n"
    )
    assert result.exit_code == 0, result.output
    assert "set a new password for forgetful@example.com; their sessions have ended" in result.output
    assert user_for_login(session, "forgetful@example.com", "old password") is None
    assert user_for_login(session, "forgetful@example.com", "new password") is not None

    mismatch = CliRunner().invoke(main, ["user", "set-password", "forgetful@example.com"], input="a\nb\na\na\n")
    assert "The two entered values do not match." in mismatch.output

    short = CliRunner().invoke(main, ["user", "set-password", "forgetful@example.com", "--password", "short"])
    assert short.exit_code == 1 and "a password needs at least 8 characters" in short.output
    missing = CliRunner().invoke(main, ["user", "set-password", "nobody@example.com", "--password", "x"])
    assert missing.exit_code == 1 and "no user has the email nobody@example.com" in missing.output


def test_token_rotates_and_list_shows_everyone(test_env, make_user, session):
    make_user("admin@example.com", role="admin")
    _, old_token = make_user("api@example.com")
    result = CliRunner().invoke(main, ["user", "token", "api@example.com"])
    assert result.exit_code == 0, result.output
    new_token = result.output.strip().splitlines()[-1]
    assert user_for_token(session, old_token) is None
    assert user_for_token(session, new_token).email == "api@example.com"

    listed = CliRunner().invoke(main, ["user", "list"]).output.splitlines()
    assert [line.split()[1:3] for line in listed] == [["admin@example.com", "admin"], ["api@example.com", "viewer"]]
