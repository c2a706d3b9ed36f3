"""wsload/_compiled.py: the compiled modules run only when fresh, and never with WSLOAD_PURE."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

import pytest

from wsload._compiled import COMPILED_LABEL, MANIFEST, PURE_ENV, PURE_LABEL, decide, status

_SOURCE = "def f() -> int:\n    return 1\n"


def _package(tmp_path: Path, *, library: bool = True) -> Path:
    """A ``wsload`` folder as a build leaves it: a source, the manifest, the group library."""
    package = tmp_path / "wsload"
    (package / "core").mkdir(parents=True)
    (package / "core" / "frames.py").write_text(_SOURCE)
    digest = hashlib.sha256(_SOURCE.encode()).hexdigest()
    (package / MANIFEST).write_text(json.dumps({"wsload.core.frames": digest}))
    if library:
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        (package / f"_mypyc__mypyc{suffix}").write_bytes(b"")
    return package


def test_a_fresh_build_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PURE_ENV, raising=False)
    build = decide(_package(tmp_path))
    assert build.compiled and build.label == COMPILED_LABEL and str(build) == COMPILED_LABEL
    assert build.modules == ("wsload.core.frames",)


@pytest.mark.parametrize("value", ["1", "yes"])
def test_wsload_pure_forces_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(PURE_ENV, value)
    build = decide(_package(tmp_path))
    assert not build.compiled and build.label == PURE_LABEL
    assert str(build) == "pure (WSLOAD_PURE is set)"
    assert build.modules == ("wsload.core.frames",)  # the finder routes these to their .py


@pytest.mark.parametrize("value", ["", "0"])
def test_wsload_pure_empty_or_0_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(PURE_ENV, value)
    assert decide(_package(tmp_path)).compiled


def test_a_source_edited_since_the_build_runs_pure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PURE_ENV, raising=False)
    package = _package(tmp_path)
    (package / "core" / "frames.py").write_text(_SOURCE + "# edited\n")
    build = decide(package)
    assert not build.compiled
    assert "wsload.core.frames changed since the build: pip install -e ." in build.reason


def test_no_manifest_or_no_library_for_this_python_runs_pure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PURE_ENV, raising=False)
    assert decide(tmp_path) == decide(tmp_path)  # nothing there at all
    assert decide(tmp_path).reason == "installed without compiling"
    assert decide(tmp_path).modules == ()
    build = decide(_package(tmp_path / "other", library=False))
    assert not build.compiled and build.reason == "no build for this Python"


def test_this_process_build_matches_the_modules_it_imported() -> None:
    """Compiled: every listed module is an extension; pure: every one is its ``.py``."""
    import importlib

    build = status()
    for name in build.modules:
        origin = importlib.import_module(name).__file__ or ""
        assert origin.endswith(".py") is not build.compiled, (name, origin)
