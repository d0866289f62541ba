"""The chaos suite at a larger scale, with its long variants.

Runs tests/system/test_chaos.py and tests/system/test_chaos_outages.py with N documents per scenario (CI runs 12) and the
long variants (more SIGKILLs at random points; SIGKILL 30 s after SIGTERM,
where CI waits 5 s); each scenario prints how long recovery took. Extra arguments go to pytest.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/chaos.py [N] [pytest args...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def main(argv: list[str]) -> int:
    documents = argv[0] if argv and argv[0].isdigit() else "50"
    extra = argv[1:] if argv and argv[0].isdigit() else argv
    os.environ["CHAOS_DOCUMENTS"] = documents
    os.environ["CHAOS_LONG"] = "1"
    tests = Path(__file__).resolve().parent.parent / "tests" / "system"
    return pytest.main(["-q", "-s", str(tests / "test_chaos.py"), str(tests / "test_chaos_outages.py"), *extra])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
