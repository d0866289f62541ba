"""While `docqueue up` runs, start again an embedded Postgres or Redis that died, and say so.

Killed (`kill -9`, the OOM killer), an embedded server used to stay dead:
`docqueue status` showed it "gone", the clock logged an error every tick,
and only `docqueue down` then `docqueue up` brought it back. The watch
looks at both servers every WATCH_INTERVAL_SECONDS; one that is gone is
started again on the same data and socket, so the web, worker and clock
reconnect on their own. `up.json` gets the new pid. When it cannot be
started again (after RESTART_ATTEMPTS tries: a dead Postgres's processes
may hold its memory for a few seconds), the watch says exactly what to run
and stops trying for that server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from docqueue.local.embedded import EmbeddedServers
from docqueue.local.state import RecordedProcess, UpState, write_state

WATCH_INTERVAL_SECONDS = 1.0
RESTART_ATTEMPTS = 10
RESTART_RETRY_SECONDS = 2.0
#: How the servers are named in `up.json` and in what the watch says.
LABELS = {"postgres": "Postgres", "redis": "Redis"}


class ServerWatch:
    """Restarts the embedded servers `up` started when one dies, until `stopping` is set."""

    def __init__(
        self,
        home: Path,
        state: UpState,
        servers: EmbeddedServers,
        say: Callable[[str], None],
        stopping: threading.Event,
    ) -> None:
        self.home = home
        self.state = state
        self.servers = servers
        self.say = say
        self.stopping = stopping
        self.given_up: set[str] = set()

    def start(self) -> threading.Thread:
        """Watch in a daemon thread."""
        thread = threading.Thread(target=self.run, name="server-watch", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        """Check the servers every WATCH_INTERVAL_SECONDS; restart any that died."""
        while not self.stopping.wait(WATCH_INTERVAL_SECONDS):
            for recorded in list(self.state.servers):
                if recorded.name not in self.given_up and not recorded.running():
                    self.restart(recorded)

    def restart(self, recorded: RecordedProcess) -> None:
        """Start the server `recorded` names again; say what happened, and what to run if it cannot be."""
        label = LABELS.get(recorded.name, recorded.name)
        self.say(f"embedded {label} (pid {recorded.pid}) has died; starting it again on the same data")
        restart = {"postgres": self._restart_postgres, "redis": self._restart_redis}[recorded.name]
        failure = None
        for _ in range(RESTART_ATTEMPTS):
            if self.stopping.is_set():
                return
            try:
                pid, url = restart()
            except Exception as error:  # any reason it would not start: try again, then say it
                failure = error
                self.stopping.wait(RESTART_RETRY_SECONDS)
                continue
            self._record(recorded, pid)
            recorded_url = self.state.database_url if recorded.name == "postgres" else self.state.redis_url
            if url != recorded_url:
                # The processes keep the URL they started with: a server elsewhere is no use to them.
                self.given_up.add(recorded.name)
                self.say(
                    f"error: embedded {label} came back at {url}, not {recorded_url}; "
                    f"run `docqueue down` and then `docqueue up`"
                )
                return
            self.say(f"embedded {label} is running again (pid {pid}); the processes reconnect by themselves")
            return
        self.given_up.add(recorded.name)
        self.say(
            f"error: could not start embedded {label} again ({_first_line(failure)}); "
            f"run `docqueue down` and then `docqueue up` (the data in {self.home} is kept)"
        )

    def _restart_postgres(self) -> tuple[int, str]:
        url = self.servers.restart_postgres()
        return self.servers.postgres_pid, url

    def _restart_redis(self) -> tuple[int, str]:
        url = self.servers.restart_redis()
        return self.servers.redis_pid, url

    def _record(self, recorded: RecordedProcess, pid: int) -> None:
        """Put the new process in `up.json` in place of the dead one (the guardian and `down` stop what it names)."""
        replacement = RecordedProcess.of(recorded.name, pid, stop_signal=recorded.stop_signal)
        self.state.servers = [replacement if server is recorded else server for server in self.state.servers]
        write_state(self.home, self.state)


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__
