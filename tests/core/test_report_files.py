"""Results files: atomic writes, user-only results directories, unique names."""

from __future__ import annotations

import json
import math
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from wsload.errors import ToolError, UsageError
from wsload.report.files import (
    make_results_dir,
    open_log,
    prepare_results_dir,
    results_dir_name,
    write_json_atomic,
    write_text_atomic,
)

WHEN = datetime(2026, 11, 21, 17, 5, 9, 999999, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_text_write_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.txt"
    write_text_atomic(target, "first\n")
    write_text_atomic(target, "second ✓\n")
    assert target.read_text(encoding="utf-8") == "second ✓\n"
    assert sorted(os.listdir(tmp_path)) == ["summary.txt"]
    assert _mode(target) == 0o600


def test_atomic_json_is_strict_indented_and_newline_terminated(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"schema_version": 1, "name": "ünïcode", "p99": None})
    text = target.read_text(encoding="utf-8")
    assert text.endswith("}\n") and '\n  "schema_version": 1' in text and "ünïcode" in text
    assert json.loads(text) == {"schema_version": 1, "name": "ünïcode", "p99": None}


def test_failed_writes_keep_the_old_file_and_leave_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"ok": True})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"mean": math.nan})  # not JSON: nothing is written
    with pytest.raises(TypeError):
        write_json_atomic(target, {"when": WHEN})
    assert json.loads(target.read_text()) == {"ok": True}
    a_dir = tmp_path / "is_a_dir"
    a_dir.mkdir()
    with pytest.raises(ToolError, match="cannot write"):
        write_text_atomic(a_dir, "x")  # rename over a directory fails after the temp write
    with pytest.raises(ToolError, match="cannot write"):
        write_text_atomic(tmp_path / "missing" / "f.json", "x")
    assert sorted(os.listdir(tmp_path)) == ["is_a_dir", "summary.json"]
    assert os.listdir(a_dir) == []


def test_results_dir_name_is_utc() -> None:
    assert results_dir_name("quickstart", WHEN) == "quickstart-20261121T170509Z"
    plus5 = timezone(timedelta(hours=5))
    assert results_dir_name("q", datetime(2026, 1, 1, 3, 0, tzinfo=plus5)) == "q-20251231T220000Z"
    assert results_dir_name("q", datetime(2026, 1, 1, 3, 0)) == "q-20260101T030000Z"


def test_make_results_dir_is_user_only_and_never_reused(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        base = tmp_path / "results" / "nested"
        first = make_results_dir(base, "quickstart", WHEN)
        second = make_results_dir(base, "quickstart", WHEN)
        third = make_results_dir(base, "quickstart", WHEN)
    finally:
        os.umask(old_umask)
    assert first == base / "quickstart-20261121T170509Z"
    assert second.name == "quickstart-20261121T170509Z-2"
    assert third.name == "quickstart-20261121T170509Z-3"
    for path in (first, second, third):
        assert path.is_dir() and _mode(path) == 0o700


def test_make_results_dir_reports_an_unusable_base(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file, not a directory")
    with pytest.raises(ToolError, match="cannot create a results directory"):
        make_results_dir(blocker, "q", WHEN)


def test_prepare_results_dir(tmp_path: Path) -> None:
    fresh = prepare_results_dir(tmp_path / "a" / "today")
    assert fresh.is_dir() and _mode(fresh) == 0o700
    existing = tmp_path / "mine"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    assert prepare_results_dir(existing) == existing
    assert _mode(existing) == 0o755  # the user's own directory keeps its mode
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        prepare_results_dir(file)


def test_open_log_truncates_and_is_user_only(tmp_path: Path) -> None:
    path = tmp_path / "histograms.hlog"
    path.write_text("old content\n")
    with open_log(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n" and _mode(path) == 0o600
    with pytest.raises(ToolError, match="cannot create"):
        open_log(tmp_path / "missing" / "x.hlog")
