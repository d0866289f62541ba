"""How much memory the machine (or container) has left, and how big this process has grown.

Read from the kernel directly: the cgroup's limit and usage when the
process runs in one with a limit (a PaaS dyno does), else /proc/meminfo.
"""

from __future__ import annotations

import os
from pathlib import Path

from docqueue.settings import get_settings

_CGROUP = Path("/sys/fs/cgroup")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _cgroup_percent() -> float | None:
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return 100 * int((_CGROUP / "memory.current").read_text()) / int(limit)
    except (OSError, ValueError):
        return None


def _meminfo_percent() -> float:
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return 100 * (1 - fields["MemAvailable"] / fields["MemTotal"])


def memory_used_percent() -> float:
    """Percent of the memory available to this process's container (or machine) now in use."""
    cgroup = _cgroup_percent()
    return cgroup if cgroup is not None else _meminfo_percent()


def under_pressure() -> bool:
    """Whether memory use is above MEMORY_PAUSE_PERCENT."""
    return memory_used_percent() > get_settings().memory_pause_percent


def batch_size(normal: int) -> int:
    """`normal`, or a quarter of it (at least 1) while memory is under pressure."""
    return max(1, normal // 4) if under_pressure() else normal


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0  # it exited meanwhile


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def family_rss_bytes(pid: int | None = None) -> int:
    """Resident memory of the process and its direct children (a worker and its PDF processes)."""
    pid = pid or os.getpid()
    return _rss_bytes(pid) + sum(_rss_bytes(child) for child in _children(pid))
