"""``wsload._starting``: only the ``wsload`` command takes SIGTERM and SIGINT while its package
imports; a program (or this test run) that imports wsload keeps its own signal handling.
tests/process/test_run_signals.py sends the signals to the real command."""

from __future__ import annotations

import pytest

from wsload._starting import is_the_command


@pytest.mark.parametrize(
    ("argv", "orig_argv"),
    [
        (["-m"], ["python", "-m", "wsload", "run", "s.toml"]),
        (["-m"], ["python3", "-X", "importtime", "-m", "wsload"]),
        (["-m"], ["python3", "-mwsload", "--version"]),
        (["/venv/bin/wsload", "run"], ["/venv/bin/python", "/venv/bin/wsload", "run"]),
    ],
)
def test_the_command_is_recognised(argv: list[str], orig_argv: list[str]) -> None:
    assert is_the_command(argv, orig_argv)


@pytest.mark.parametrize(
    ("argv", "orig_argv"),
    [
        (["-m"], ["python", "-m", "pytest", "tests"]),  # a package that imports wsload
        (["-m"], ["python", "-m", "wsload_plugin"]),
        (["/venv/bin/pytest"], ["/venv/bin/python", "/venv/bin/pytest"]),
        (["-c"], ["python", "-c", "import wsload"]),
        ([], []),  # embedded
    ],
)
def test_a_program_importing_wsload_is_not_the_command(
    argv: list[str], orig_argv: list[str]
) -> None:
    assert not is_the_command(argv, orig_argv)
