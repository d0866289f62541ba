"""ConnectionRole: a dramatiq worker process's connections are budgeted and named as the worker's."""

from __future__ import annotations

from dramatiq.middleware import Middleware

from docqueue.connections import ProcessRole, set_process_role


class ConnectionRole(Middleware):
    """Middleware that gives a worker process the worker's connection budget (DB_WORKER_CONNECTIONS) and
    the `docqueue-worker` application name, once it has booted and before its first connection."""

    def after_process_boot(self, broker):
        set_process_role(ProcessRole.WORKER)
