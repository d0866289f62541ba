"""`docqueue user`: create users, set their role, password, token, settings and quotas, rotate callback secrets."""

from __future__ import annotations

import sys

import click

from docqueue.accounts.users import UserExists, create_user
from docqueue.db import session_scope
from docqueue.statuses import ROLES


@click.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="viewer",
    show_default=True,
    help="viewer: own documents; operator: steer the whole queue; admin: also manage users.",
)
@click.option("--admin", is_flag=True, help="Same as --role admin.")
@click.option("--password", help="Password for the browser login (omit for an API-only user).")
def user_create(email: str, role: str, admin: bool, password: str | None) -> None:
    """Create a user and print its API token alone on the last line."""
    role = "admin" if admin else role
    try:
        with session_scope() as session:
            created, token = create_user(session, email, password, role=role)
            click.echo(f"created {role} {created.email} (id {created.id}); API token:")
    except (UserExists, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(token)


@user.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="The new password.")
def user_set_password(email: str, password: str) -> None:
    """Set a user's browser password (prompted for when not given); their sessions end."""
    from docqueue.accounts.management import set_password

    def change(session, found):
        set_password(session, None, found, password)
        return f"set a new password for {found.email}; their sessions have ended"

    _change_user(email, change)


@user.command("token")
@click.argument("email")
def user_token(email: str) -> None:
    """Give a user a new API token, printed alone on the last line; the old one stops working."""
    from docqueue.accounts.management import reset_token

    def change(session, found):
        return f"new API token for {found.email} (the old one no longer works):\n{reset_token(session, None, found)}"

    _change_user(email, change)


@user.command("list")
def user_list() -> None:
    """List every user: id, email, role, whether disabled, when created."""
    from docqueue.accounts.management import list_users

    with session_scope() as session:
        users = list_users(session)
    if not users:
        click.echo("no users yet (`docqueue up` creates admin@localhost on its first run)")
    for listed in users:
        state = "disabled" if listed.disabled_at else "enabled"
        click.echo(
            f"{listed.id:>6}  {listed.email:<40} {listed.role:<8} {state:<8} created {listed.created_at:%Y-%m-%d %H:%M:%S %Z}"
        )


def _change_user(email: str, change) -> None:
    """Run `change(session, user)` on the user with `email` in one transaction, audited as the command line."""
    from docqueue.accounts.management import UnknownUser, find_user

    try:
        with session_scope() as session:
            click.echo(change(session, find_user(session, email)))
    except (UnknownUser, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


@user.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def user_role(email: str, role: str) -> None:
    """Give a user a role."""
    from docqueue.accounts.management import set_role

    def change(session, found):
        set_role(session, None, found, role)
        return f"{found.email} is now {role}"

    _change_user(email, change)


@user.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a user: no login, and their sessions and API token stop working."""
    from docqueue.accounts.management import set_disabled

    def change(session, found):
        set_disabled(session, None, found, True)
        return f"{found.email} is disabled"

    _change_user(email, change)


@user.command("enable")
@click.argument("email")
def user_enable(email: str) -> None:
    """Enable a disabled user again."""
    from docqueue.accounts.management import set_disabled

    def change(session, found):
        set_disabled(session, None, found, False)
        return f"{found.email} is enabled"

    _change_user(email, change)


def _quota_option(option: str, raw: str | None) -> int | None:
    """A quota option's value: a whole number, or 'default' (USE_DEFAULT); a usage error for anything else."""
    from docqueue.accounts.management import USE_DEFAULT

    if raw is None:
        return None
    if raw.strip().lower() == "default":
        return USE_DEFAULT
    try:
        return int(raw)
    except ValueError:
        raise click.BadParameter(f"must be a whole number or 'default', got {raw!r}", param_hint=option) from None


@user.command("settings")
@click.argument("email")
@click.option("--concurrent-ocr-jobs", type=int, help="Jobs of this user in flight at once (0 holds them all).")
@click.option("--ocr-timeout-seconds", type=int, help="Time limit of each of this user's stages.")
@click.option("--background-ocr/--no-background-ocr", default=None, help="Run OCR for this user's scans.")
@click.option("--storage-quota-mb", help="MB of uploads this user may store, or 'default' (DEFAULT_STORAGE_QUOTA_MB).")
@click.option("--daily-page-quota", help="Pages processed a UTC day, or 'default' (DEFAULT_DAILY_PAGE_QUOTA).")
def user_settings(
    email: str,
    concurrent_ocr_jobs: int | None,
    ocr_timeout_seconds: int | None,
    background_ocr: bool | None,
    storage_quota_mb: str | None,
    daily_page_quota: str | None,
) -> None:
    """Show a user's settings and quotas, changing those given first."""
    from docqueue.accounts.management import UserSettings, update_settings
    from docqueue.quotas import usage

    def change(session, found):
        wanted = UserSettings(
            concurrent_ocr_jobs,
            ocr_timeout_seconds,
            background_ocr,
            _quota_option("--storage-quota-mb", storage_quota_mb),
            _quota_option("--daily-page-quota", daily_page_quota),
        )
        if wanted != UserSettings():
            update_settings(session, None, found, wanted)
        used = usage(session, found)
        return (
            f"{found.email}: role={found.role} concurrent_ocr_jobs={found.concurrent_ocr_jobs} "
            f"ocr_timeout_seconds={found.ocr_timeout_seconds} enable_background_ocr={found.enable_background_ocr} "
            f"storage_quota_mb={used.storage_quota_mb}{'' if found.storage_quota_mb is not None else ' (default)'} "
            f"storage_used_bytes={used.storage_used_bytes} "
            f"daily_page_quota={used.daily_page_quota}{'' if found.daily_page_quota is not None else ' (default)'} "
            f"pages_today={used.pages_today} disabled={'yes' if found.disabled_at else 'no'}"
        )

    _change_user(email, change)


@user.group("callback-secret")
def callback_secret() -> None:
    """Manage the secret that signs a user's callbacks."""


@callback_secret.command("rotate")
@click.argument("email")
def callback_secret_rotate(email: str) -> None:
    """Give a user a new callback secret, printed alone on the last line; the old one signs for the grace period."""
    from docqueue.callbacks.signing import rotate_secret
    from docqueue.settings import get_settings

    def change(session, found):
        grace_hours = get_settings().callback_secret_grace_hours
        secret = rotate_secret(session, None, found, grace_hours)
        return f"new callback secret for {found.email} (the old one also signs for {grace_hours} hours):\n{secret}"

    _change_user(email, change)
