"""The only module of ``wsload.report`` that touches paths: results directories and files.

Results are a public interface that CI parses, so a reader must never see half a file: every
file is written to a temporary sibling, fsynced, then renamed over the target (atomic on
POSIX), and the directory entry is fsynced too. Directories and files are user-only (0o700 /
0o600) because a resolved scenario can carry secrets (``target.headers``: tokens, cookies).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from wsload.errors import ToolError, UsageError

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "OWN_DIRS",
    "OWN_FILES",
    "append_text",
    "make_results_dir",
    "open_log",
    "prepare_results_dir",
    "results_dir_name",
    "write_json_atomic",
    "write_text_atomic",
]

DIR_MODE = 0o700
FILE_MODE = 0o600


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that readers see the old file or the new one.

    Raises:
        ToolError: the file could not be written (no temporary file is left behind).
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ToolError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ToolError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    """``write_text_atomic`` of ``obj`` as indented, strict JSON (no NaN/Infinity) + newline.

    Raises:
        ValueError / TypeError: ``obj`` is not strict-JSON-able (nothing is written).
        ToolError: the file could not be written.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_text_atomic(path, text)


def results_dir_name(name: str, when: datetime) -> str:
    """``<name>-<YYYYmmddTHHMMSSZ>``: ``when`` converted to UTC (a naive ``when`` is UTC)."""
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=UTC)
    return f"{name}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def make_results_dir(base: Path, name: str, when: datetime) -> Path:
    """Create ``base/<name>-<UTC time>`` (0o700) and return it; never reuse one.

    Two runs started in the same second get ``...Z-2``, ``...Z-3``: creation is the check
    (``mkdir`` fails if it exists), so concurrent runs cannot share a directory.

    Raises:
        ToolError: ``base`` cannot be created or written.
    """
    stem = results_dir_name(name, when)
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            path = Path(base) / (stem if n == 1 else f"{stem}-{n}")
            try:
                path.mkdir(mode=DIR_MODE)
            except FileExistsError:
                continue
            os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
            return path
    except OSError as exc:
        raise ToolError(f"cannot create a results directory in {base}: {exc}") from exc
    raise ToolError(f"cannot create a results directory in {base}: {stem}-* all exist")


OWN_FILES = (
    "summary.json",
    "scenario.toml",
    "histograms.hlog",
    "timeline.jsonl",
    "totals.json",
    "report.html",
    "server.log",
)
"""The files wsload writes in a results directory (``--force`` removes these and no others)."""
OWN_DIRS = ("segments", "runs")
"""Its subdirectories: each share's results (split runs), each run's (``--repeat``)."""


def prepare_results_dir(path: Path, name: str = "", *, force: bool = False) -> Path:
    """Make ``path`` (``--out``) ready for the results of scenario ``name``: created 0o700 if
    missing, never holding another run's files.

    Two runs' files in one folder would be read as one result (an old report.html beside a new
    summary.json), so a folder that is not empty is refused, unless it holds only wsload's
    files of an unfinished run of the same scenario (interrupted, failed: the run is being
    redone) or ``force`` is set; either way wsload's own files are removed first (anything
    else in it is left alone). An existing directory keeps its mode (the user's choice).

    Raises:
        UsageError: ``path`` exists and is not a directory, or holds another result.
        ToolError: it cannot be created or emptied.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path}: exists and is not a directory")
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=DIR_MODE, exist_ok=True)
            os.chmod(path, DIR_MODE)
            return path
        entries = sorted(entry.name for entry in path.iterdir())
        if not entries:
            return path
        if not (force or _unfinished_run_of(path, entries, name)):
            shown = ", ".join(entries[:3]) + (
                f" +{len(entries) - 3} more" if len(entries) > 3 else ""
            )
            raise UsageError(
                f"--out {path}: not empty ({shown}): wsload does not mix two runs' files in one "
                "folder; choose a new folder, or add --force to replace wsload's files in it"
            )
        for entry in entries:
            if entry in OWN_FILES or _temporary(entry):
                (path / entry).unlink()
            elif entry in OWN_DIRS:
                shutil.rmtree(path / entry)
    except OSError as exc:
        raise ToolError(f"cannot prepare {path}: {exc}") from exc
    return path


def _temporary(entry: str) -> bool:
    """A temporary sibling of an atomic write, left by a crash (``.summary.json.x1y2.tmp``)."""
    return entry.startswith(".") and entry.endswith(".tmp")


def _unfinished_run_of(path: Path, entries: list[str], name: str) -> bool:
    """Only wsload's files, of scenario ``name``, without a finished summary.json."""
    own = set(OWN_FILES) | set(OWN_DIRS)
    if not name or not all(entry in own or _temporary(entry) for entry in entries):
        return False
    try:
        scenario = tomllib.loads((path / "scenario.toml").read_text(encoding="utf-8"))
        summary_path = path / "summary.json"
        summary = json.loads(summary_path.read_text("utf-8")) if summary_path.exists() else {}
    except (OSError, ValueError):
        return False
    if scenario.get("name") != name or not isinstance(summary, dict):
        return False
    return not summary or bool(summary.get("interrupted") or summary.get("error"))


def open_log(path: Path) -> TextIO:
    """Create (truncate) ``path`` user-only for appending a log line by line.

    For files written *during* a run (histograms.hlog), where atomic replacement does not
    apply: the writer flushes after each record instead, so a crash keeps every line written.

    Raises:
        ToolError: the file cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    except OSError as exc:
        raise ToolError(f"cannot create {path}: {exc.strerror or exc}") from exc
    stream = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    except OSError as exc:
        stream.close()
        raise ToolError(f"cannot restrict {path} to its owner: {exc.strerror or exc}") from exc
    return stream


def _fsync_dir(path: Path) -> None:
    """Persist a rename: fsync the directory entry (best effort where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` (created user-only if missing), e.g. $GITHUB_STEP_SUMMARY,
    a file other steps append to as well, so it is never replaced.

    Raises:
        ToolError: the file cannot be opened or written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        with os.fdopen(fd, "a", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
    except OSError as exc:
        raise ToolError(f"cannot append to {path}: {exc.strerror or exc}") from exc
