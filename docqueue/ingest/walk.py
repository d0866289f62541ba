"""Finding the files an ingest will read: a recursive walk that never leaves the given paths.

Symbolic links are never followed: one pointing outside the given paths
could pull in any file the importing account can read (and a link to a
directory could loop). Each is reported with its reason, like every other
file that is not taken; files the include/exclude globs leave out are only
counted.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch

from docqueue.text_cleaning import shown_name


@dataclass(frozen=True)
class Candidate:
    """A regular file to read: where it is, what to call it, how big it was when walked."""

    path: str
    display: str
    size: int


@dataclass(frozen=True)
class Rejection:
    """A file not taken, and why (the run record and the CSV list these)."""

    display: str
    reason: str
    #: Bytes the walk counted for it (progress), when it got that far.
    size: int = 0


@dataclass
class WalkResult:
    candidates: list[Candidate] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: Files left out by --include / --exclude.
    filtered: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(candidate.size for candidate in self.candidates)


def too_large_reason(max_bytes: int) -> str:
    return f"larger than the {max_bytes // (1024 * 1024)} MB limit (MAX_UPLOAD_MB)"


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    """A glob matches the path below its root or the file's own name (`*.pdf`, `scans/*`)."""
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch(relative, pattern) or fnmatch(name, pattern) for pattern in patterns)


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def walk_paths(
    paths: Iterable[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_bytes: int | None = None,
    names: Sequence[str] | None = None,
) -> WalkResult:
    """Every regular file under `paths` (files or directories), in a stable order, with what was left out.

    Files are reported under `names` (one per path; default the paths as given), every part as
    `shown_name` shows it: these names reach the run record, its CSV and the folder upload's messages.
    """
    paths = list(paths)
    given = [os.path.abspath(path) for path in paths]
    roots = [os.path.realpath(path) for path in given]
    result = WalkResult()

    def consider(path: str, display: str, relative: str, entry_stat: os.stat_result) -> None:
        if (include and not _matches(relative, include)) or (exclude and _matches(relative, exclude)):
            result.filtered += 1
        elif stat.S_ISLNK(entry_stat.st_mode):
            target = os.path.realpath(path)
            if _inside(target, roots):
                result.rejections.append(
                    Rejection(display, "symbolic link: not followed (its target is ingested under its own path)")
                )
            else:
                result.rejections.append(
                    Rejection(
                        display, f"symbolic link to {shown_name(target)}, outside the ingested paths: not followed"
                    )
                )
        elif not stat.S_ISREG(entry_stat.st_mode):
            result.rejections.append(Rejection(display, "not a regular file"))
        elif max_bytes is not None and entry_stat.st_size > max_bytes:
            result.rejections.append(Rejection(display, too_large_reason(max_bytes)))
        else:
            result.candidates.append(Candidate(path=path, display=display, size=entry_stat.st_size))

    def walk(directory: str, display: str, relative: str) -> None:
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            result.rejections.append(Rejection(display, f"cannot list the folder: {error.strerror}"))
            return
        for entry in entries:
            child_display = os.path.join(display, shown_name(entry.name))
            child_relative = f"{relative}/{entry.name}" if relative else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, child_display, child_relative)
                    continue
                entry_stat = entry.stat(follow_symlinks=False)
            except OSError as error:
                result.rejections.append(Rejection(child_display, f"cannot read: {error.strerror}"))
                continue
            consider(entry.path, child_display, child_relative, entry_stat)

    for name, path in zip(names or paths, given):
        original = shown_name(os.fspath(name))
        try:
            path_stat = os.stat(path)
        except OSError as error:
            result.rejections.append(Rejection(original, f"cannot read: {error.strerror}"))
            continue
        if stat.S_ISDIR(path_stat.st_mode):
            walk(path, original, "")
        else:
            consider(path, original, os.path.basename(path), path_stat)
    return result
