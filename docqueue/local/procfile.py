"""The Procfile, read the one way that `docqueue up`, the tests and the benchmarks all share."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from honcho.environ import parse_procfile

#: The checkout: where the Procfile, `migrations/` and the top-level packages live.
REPO_ROOT = Path(__file__).resolve().parents[2]


def procfile_commands() -> dict[str, str]:
    """Each Procfile process's command line, by process name."""
    return dict(parse_procfile((REPO_ROOT / "Procfile").read_text()).processes)


def with_local_scripts(env: dict) -> dict:
    """`env` with this Python's script folder first on PATH.

    The Procfile says `flask`, `gunicorn`, `dramatiq`, `docqueue`: find the ones
    installed beside this interpreter even when its virtualenv is not activated.
    """
    return {**env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])}
