"""``wsload run`` fitting the plan to the machine (``runner/modes/machine.py``): pure cases.

The same decisions made for real, in child processes with a small file limit and a narrowed
port range, are in tests/process/test_machine_auto.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from wsload.runner.modes.machine import Limits, calibration_path, save_calibration, size
from wsload.scenario.model import Scenario
from wsload.scenario.parse import parse_scenario

PORTS = (32768, 60999)  # 28,232 ports; 45 % of them: 12,704 per source address
HERE = Limits(nofile=20_000, nofile_max=None, port_range=PORTS, cores=2)


def _storm(n: int, *, url: str = "builtin", rate: float | None = None, extra: str = "") -> Scenario:
    text = (
        f'name = "s"\n[target]\nurl = "{url}"\n{extra}[load]\nmodel = "storm"\nconcurrency = {n}\n'
    )
    if rate is not None:
        text += f"rate = {rate}\n"
    return parse_scenario(text)


def test_a_plan_that_fits_changes_nothing() -> None:
    sizing = size(_storm(1000, rate=200), HERE, workers=None)
    assert (sizing.workers, sizing.raised, sizing.file_limit) == (1, False, 20_000)
    assert sizing.source_addresses == () and sizing.server_processes == 1
    assert sizing.notes == ()
    scenario = _storm(10)
    assert sizing.apply(scenario) is scenario


def test_one_hundred_thousand_over_the_file_limit_and_the_ports() -> None:
    sizing = size(_storm(100_000, rate=1000), HERE, workers=None)
    assert sizing.workers == 6  # 19,936 connections per process
    assert sizing.server_processes == 6
    assert sizing.source_addresses == tuple(f"127.0.0.{i}" for i in range(1, 9))
    text = "\n".join(sizing.notes)
    assert "6 generator processes (--workers 6)" in text
    assert "over one process's file limit of 20,000" in text
    assert "source addresses 127.0.0.1-127.0.0.8" in text
    assert "12,704 per address (32768-60999, 45% of it: connect() searches one half first)" in text
    assert "the built-in server in 6 processes" in text
    summary = sizing.summary(sizing.workers)
    assert summary["generator"]["workers"] == 6
    assert summary["target"]["source_addresses"][-1] == "127.0.0.8"
    applied = sizing.apply(_storm(100_000, rate=1000))
    assert applied.target.source_addresses == sizing.source_addresses


def test_root_raises_the_hard_limit_instead_of_splitting() -> None:
    root = replace(HERE, nofile_max=1_048_576)
    sizing = size(_storm(100_000, rate=1000), root, workers=None)
    assert sizing.raised and sizing.file_limit == 100_064
    assert sizing.workers == 1 and sizing.server_processes == 1
    assert "raised the hard file limit from 20,000 to 100,064" in sizing.notes[0]
    capped = size(_storm(100_000), replace(HERE, nofile_max=50_000), workers=None)
    assert capped.file_limit == 50_000 and capped.workers == 3


def test_the_rate_over_one_core_adds_workers_up_to_the_cores() -> None:
    # 0.6 x 3,000 cycles/s = 1,800/s per worker (the built-in estimate)
    assert size(_storm(5000, rate=1700), HERE, workers=None).workers == 1
    sizing = size(_storm(5000, rate=2500), HERE, workers=None)
    assert sizing.workers == 2
    assert "the built-in estimate of 3,000 cycles/s per core" in sizing.notes[0]
    assert size(_storm(5000, rate=50_000), HERE, workers=None).workers == 2  # 2 cores
    calibrated = replace(HERE, cycles_per_core=5000.0, calibrated=True)
    sizing = size(_storm(5000, rate=2500), calibrated, workers=None)
    assert sizing.workers == 1  # 3,000/s per worker


def test_an_explicit_choice_always_wins() -> None:
    sizing = size(_storm(100_000, rate=5000), HERE, workers=1)
    assert sizing.workers == 1
    assert not any("generator processes" in note for note in sizing.notes)
    assert sizing.server_processes == 6  # the server still needs its file limit
    unsplit = size(_storm(100_000, rate=5000), HERE, workers=None, split=False)
    assert unsplit.workers == 1


def test_source_addresses_only_for_a_loopback_target_without_its_own() -> None:
    remote = size(_storm(60_000, url="ws://10.0.0.5:80/"), HERE, workers=None)
    assert remote.source_addresses == () and remote.server_processes is None
    listed = _storm(60_000, url="ws://127.0.0.1:80/", extra='source_addresses = ["127.0.0.9"]\n')
    assert size(listed, HERE, workers=None).source_addresses == ("127.0.0.9",)
    process = '[target.process]\ncommand = ["server", "{port}"]\n'
    managed = size(_storm(60_000, url="ws://localhost:{port}/", extra=process), HERE, workers=None)
    assert managed.source_addresses == tuple(f"127.0.0.{i}" for i in range(1, 6))


def test_calibrate_saves_its_figure_for_the_sizing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WSLOAD_CALIBRATION", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Limits.here().calibrated is False
    path = save_calibration(4321.4)
    assert path == calibration_path() == tmp_path / "wsload" / "calibration.json"
    assert json.loads(path.read_text())["cycles_per_s_per_core"] == 4321
    limits = Limits.here()
    assert limits.calibrated and limits.cycles_per_core == 4321.0
    path.write_text("not json")
    assert Limits.here().calibrated is False
