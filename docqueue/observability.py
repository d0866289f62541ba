"""Error reporting and logging set-up shared by every process."""

from __future__ import annotations

import logging

import sentry_sdk

from docqueue.settings import get_settings

_initialised = False


def init_sentry() -> None:
    """Start Sentry if SENTRY_DSN is set. Call before the broker is built:
    the Dramatiq integration patches the broker class when it is created.

    Events are sent on purpose, never from log lines: a failed attempt that
    will be retried is logged but is not an event (one event per final
    failure, see `stage_runner`), so logging only leaves breadcrumbs.
    """
    global _initialised
    dsn = get_settings().sentry_dsn
    if dsn and not _initialised:
        # Imported only when Sentry is on: the Flask integration alone brings Flask, Werkzeug and Jinja
        # into every worker and PDF process.
        from sentry_sdk.integrations.dramatiq import DramatiqIntegration
        from sentry_sdk.integrations.flask import FlaskIntegration
        from sentry_sdk.integrations.logging import LoggingIntegration

        sentry_sdk.init(
            dsn=dsn,
            integrations=[DramatiqIntegration(), FlaskIntegration(), LoggingIntegration(event_level=None)],
            traces_sample_rate=0.0,
        )
        _initialised = True


def configure_logging() -> None:
    """Plain timestamped logs on stderr, as a PaaS log router expects."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
