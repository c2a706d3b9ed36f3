"""Pre-flight warnings (pure) and the limits they warn about, hit for real.

The real part: a ``wsload run`` process whose RLIMIT_NOFILE is lowered before it starts prints
the pre-flight warning and then records EMFILE as ``local_resource`` outcomes (the run goes on);
binding a source address this machine does not have records EADDRNOTAVAIL the same way.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from peers import WebsocketsPeer
from typer.testing import CliRunner

from wsload.cli import app
from wsload.runner.modes.execute import execute_run
from wsload.runner.modes.preflight import Plan, check, estimate, read_port_range
from wsload.scenario.model import CloseSpec, Delay, LoadConfig, Scenario, SessionConfig, Stage
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

PORTS = (32768, 60999)  # Linux's default range: 28,232 ports


def _storm(n: int, *, url: str = "builtin", sources: tuple[str, ...] = ()) -> Scenario:
    base = parse_scenario(
        f'name = "p"\n[target]\nurl = "{url}"\n[load]\nmodel = "storm"\nconcurrency = {n}\n'
    )
    return replace(base, target=replace(base.target, source_addresses=sources))


def test_thirty_thousand_in_one_process_names_every_fix() -> None:
    scenario = _storm(30_000)
    plan = estimate(scenario)
    assert plan == Plan(peak=30_000, time_wait=0, total=30_000)
    warnings = check(scenario, plan, processes=1, nofile=20_000, port_range=PORTS)
    text = "\n".join(warnings)
    assert len(warnings) == 3, text
    assert "30,000 connections open at once per generator process" in text
    assert "use --workers 2 or more" in text
    assert "the built-in server is one process" in text
    assert "28,232 ephemeral ports" in text
    assert "list 2 or more `source_addresses`" in text


def test_a_plan_that_fits_has_no_warning() -> None:
    scenario = _storm(30_000, url="ws://127.0.0.1:9000/", sources=("127.0.0.1", "127.0.0.2"))
    assert check(scenario, estimate(scenario), processes=2, nofile=20_000, port_range=PORTS) == []
    small = _storm(100)
    assert check(small, estimate(small), processes=1, nofile=1024, port_range=PORTS) == []


def test_time_wait_build_up_when_the_client_closes_tcp_first() -> None:
    base = _storm(1)
    fin = CloseSpec(kind="terminate", label="terminate")
    load = LoadConfig(model="arrival", rate=1000.0, duration=120.0)
    scenario = replace(
        base, target=replace(base.target, url="ws://127.0.0.1:1/"), load=load, close=(fin,)
    )
    plan = estimate(scenario)
    assert plan.time_wait == 60_000  # 1000/s x 60 s, every connection closes TCP first
    (warning,) = check(scenario, plan, processes=1, nofile=20_000, port_range=PORTS)
    assert "TIME_WAIT" in warning and "`rst = true`" in warning
    rst = replace(scenario, close=(replace(fin, rst=True),))
    assert estimate(rst).time_wait == 0
    assert check(rst, estimate(rst), processes=1, nofile=20_000, port_range=PORTS) == []
    clean = replace(scenario, close=(CloseSpec(kind="clean", label="clean"),))
    assert estimate(clean).time_wait == 0  # the server closes TCP first: its TIME_WAIT


def test_estimates_of_each_model() -> None:
    base = _storm(1)
    held = replace(base, session=SessionConfig(hold=Delay(2.0, 4.0)))
    arrival = replace(
        held,
        load=LoadConfig(
            model="arrival", rate=100.0, duration=10.0, stages=(Stage(5.0, rate=500.0),)
        ),
    )
    assert estimate(arrival).peak == 2000  # peak rate 500/s x 4 s of life
    capped = replace(arrival, load=replace(arrival.load, max_in_flight=300))
    assert estimate(capped).peak == 300
    concurrency = replace(
        held,
        load=LoadConfig(model="concurrency", concurrency=50, stages=(Stage(5.0, concurrency=80),)),
    )
    assert estimate(concurrency).peak == 80


def test_read_port_range(tmp_path: Path) -> None:
    path = tmp_path / "range"
    path.write_text("1024\t65535\n", encoding="ascii")
    assert read_port_range(path) == (1024, 65535)
    path.write_text("garbage", encoding="ascii")
    assert read_port_range(path) is None
    assert read_port_range(tmp_path / "absent") is None


@pytest.fixture(scope="module")
def ws_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=0.5) as peer:
        yield peer


_LOW_LIMIT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (120, 120))
from wsload.cli import main
sys.argv = ["wsload", "run", sys.argv[1], "--out", sys.argv[2], "--quiet", "--workers", "1"]
main()
"""


def test_emfile_is_local_resource_and_was_announced(
    tmp_path: Path, ws_peer: WebsocketsPeer
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "emfile"\nseed = 1\n[target]\nurl = "ws://127.0.0.1:{ws_peer.port}/echo"\n'
        '[load]\nmodel = "storm"\nconcurrency = 200\nopen_deadline = "5s"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", _LOW_LIMIT, str(path), str(out)],
        capture_output=True,
        text=True,
        timeout=18,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "per generator process need about 264 file descriptors, but the limit is 120" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    outcomes = summary["outcomes"]
    assert summary["totals"]["attempted"] == 200
    assert outcomes["local_resource"] > 50
    assert outcomes["clean"] > 50  # the run went on with the sockets it had


def test_unavailable_source_address_is_local_resource(
    tmp_path: Path, ws_peer: WebsocketsPeer
) -> None:
    if Path("/proc/sys/net/ipv4/ip_nonlocal_bind").read_text().strip() != "0":
        pytest.skip("non-local bind allowed here: no EADDRNOTAVAIL")
    # 192.0.2.1 (RFC 5737, documentation) is not ours: bind() fails, nothing is sent
    scenario = _storm(5, url=f"ws://127.0.0.1:{ws_peer.port}/echo", sources=("192.0.2.1",))
    execute_run(scenario, out=tmp_path / "r", quiet=True)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert summary["outcomes"]["local_resource"] == 5


def test_validate_warns_about_a_plan_that_cannot_fit(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(
        'name = "big"\n[target]\nurl = "ws://127.0.0.1:9/"\n[load]\nmodel = "storm"\n'
        "concurrency = 30000\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", "--quiet", str(path)])
    assert result.exit_code == 0
    assert f"{path}: ok" in result.stdout
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 30_064:
        assert "use --workers 2 or more" in result.stderr
    ports = read_port_range()
    if ports is not None and ports[1] - ports[0] + 1 < 30_000:
        assert "ephemeral ports" in result.stderr


def test_a_search_is_checked_at_its_highest_level(tmp_path: Path) -> None:
    """A storm-size search starts at 10 but may reach ``max``: the limits bite there."""
    path = tmp_path / "search.toml"
    path.write_text(
        'name = "big"\n[target]\nurl = "ws://127.0.0.1:9/"\n[load]\nmodel = "search"\n'
        '[load.search]\nover = "storm_size"\nstart = 10\nmax = 40000\n'
        '[thresholds]\n"outcomes.clean" = "> 99%"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", "--quiet", str(path)])
    assert result.exit_code == 0
    ports = read_port_range()
    if ports is not None and ports[1] - ports[0] + 1 < 40_000:
        assert "40,000 connections open at once" in result.stderr
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 40_064:
        assert "lower the search's `max`" in result.stderr and "--workers" not in result.stderr
    small = path.read_text(encoding="utf-8").replace("max = 40000", "max = 20")
    path.write_text(small, encoding="utf-8")
    quiet = CliRunner().invoke(app, ["validate", "--quiet", str(path)])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr
