"""``[load] model = "search"`` and ``[load.search]``: every key's mistakes exit 2 naming the key;
the resolved copy reads back equal; ``--rate``/``--duration`` and ``wsload search`` misuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wsload.cli import app
from wsload.errors import ScenarioError, UsageError
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.overrides import apply_overrides
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

SEARCH = """
[load]
model = "search"
{load}
[load.search]
{search}
[thresholds]
"close_handshake.p99" = "< 50ms"
"""


def _text(search: str = 'over = "rate"\nstart = 10\nmax = 100', load: str = "") -> str:
    return SEARCH.format(search=search, load=load)


def test_a_search_scenario_resolves_and_reads_back_equal() -> None:
    scenario = parse_scenario(_text('over = "rate"\nstart = 10\nmax = 100\nprecision = 0.02'))
    search = scenario.load.search
    assert search is not None
    assert (search.over, search.start, search.max, search.factor) == ("rate", 10.0, 100.0, 2.0)
    assert (search.step_duration, search.precision, search.cooldown) == (5.0, 0.02, 1.0)
    assert parse_scenario(scenario_to_toml(scenario)) == scenario
    storm = parse_scenario(_text('over = "storm_size"\nstart = 5\nmax = 40', load="rate = 100"))
    assert storm.load.rate == 100.0  # a storm step's opening rate
    assert parse_scenario(scenario_to_toml(storm)) == storm
    assert "start = 5, max = 40" in scenario_to_toml(storm)  # storm sizes stay whole


BASE = 'over = "rate"\nstart = 10\nmax = 100'
# (search table body, extra [load] keys, key named, fragment of the message)
ERRORS = [
    ("start = 10\nmax = 100", "", "load.search.over", "required"),
    ('over = "rate"\nmax = 100', "", "load.search.start", "required"),
    ('over = "rate"\nstart = 10', "", "load.search.max", "required"),
    ('over = "rates"\nstart = 10\nmax = 100', "", "load.search.over", "did you mean 'rate'?"),
    ('over = "rate"\nstart = 0\nmax = 100', "", "load.search.start", "must be > 0"),
    ('over = "rate"\nstart = "fast"\nmax = 100', "", "load.search.start", "expected a number"),
    ('over = "rate"\nstart = 10\nmax = 5', "", "load.search.max", "must be >= start"),
    ('over = "storm_size"\nstart = 2.5\nmax = 10', "", "load.search.start", "an integer"),
    ('over = "storm_size"\nstart = 0\nmax = 10', "", "load.search.start", "must be >= 1"),
    ('over = "storm_size"\nstart = 5\nmax = 10\nstep_duration = "1s"', "",
     "load.search.step_duration", "not used with over = \"storm_size\""),
    (BASE + "\nfactor = 1", "", "load.search.factor", "must be > 1"),
    (BASE + "\nfactor = 0", "", "load.search.factor", "must be > 0"),
    (BASE + "\nfactor = 5000", "", "load.search.factor", "<= 1000"),
    (BASE + '\nstep_duration = "0s"', "", "load.search.step_duration", "must be > 0"),
    (BASE + '\nprecision = "0%"', "", "load.search.precision", 'like "5%"'),
    (BASE + '\nprecision = "five%"', "", "load.search.precision", "got 'five%'"),
    (BASE + "\nprecision = 1.5", "", "load.search.precision", "below 1"),
    (BASE + "\nprecision = true", "", "load.search.precision", "got true"),
    (BASE + '\ncooldown = "-1s"', "", "load.search.cooldown", "got '-1s'"),
    (BASE + "\nfactr = 3", "", "load.search.factr", "did you mean 'factor'?"),
    (BASE, "rate = 50", "load.rate", "the level of a rate search is the arrival rate"),
    (BASE, 'duration = "5s"', "load.duration", "step_duration"),
    (BASE, "connections = 5", "load.connections", "step_duration"),
    (BASE, "concurrency = 5", "load.concurrency", "storm size"),
    (BASE, 'stages = [{ duration = "1s", rate = 5 }]', "load.stages", "sets each step"),
]  # fmt: skip


@pytest.mark.parametrize(("search", "load", "key", "fragment"), ERRORS)
def test_search_mistakes_name_the_key(search: str, load: str, key: str, fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_text(search, load), source="s.toml")
    assert (info.value.source, info.value.key) == ("s.toml", key), str(info.value)
    assert fragment in info.value.message, str(info.value)


def test_a_search_needs_its_table_and_thresholds() -> None:
    with pytest.raises(ScenarioError, match=r"load\.search: required by model = \"search\""):
        parse_scenario('[load]\nmodel = "search"\n[thresholds]\n"outcomes.clean" = "> 99%"\n')
    with pytest.raises(ScenarioError, match=r"^scenario\.toml: thresholds: required by model"):
        parse_scenario(_text().split("[thresholds]")[0])


def test_a_search_table_needs_the_search_model() -> None:
    with pytest.raises(ScenarioError, match=r'load\.search: only used by model = "search"'):
        parse_scenario('[load]\nrate = 5\nduration = "1s"\n[load.search]\nover = "rate"\n')


def test_close_capacity_must_be_positive() -> None:
    with pytest.raises(ScenarioError, match=r"target\.server\.close_capacity: must be > 0"):
        parse_scenario('[target.server]\nclose_capacity = 0\n[load]\nrate = 5\nduration = "1s"')


def test_run_overrides_do_not_apply_to_a_search() -> None:
    scenario = parse_scenario(_text())
    with pytest.raises(UsageError, match="--rate does not apply to the search model"):
        apply_overrides(scenario, rate=100.0)
    with pytest.raises(UsageError, match="--duration does not apply to the search model"):
        apply_overrides(scenario, duration=10.0)


def test_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_text(BASE + "\nfactor = 1"), encoding="utf-8")
    for command in ("validate", "search", "run"):
        result = CliRunner().invoke(app, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert f"{path}: load.search.factor: must be > 1" in result.stderr


def test_wsload_search_refuses_a_scenario_that_is_no_search(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[load]\nrate = 5\nduration = "1s"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["search", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f'{path}: load.model: wsload search needs model = "search"' in result.stderr
    assert not (tmp_path / "out").exists()


def test_serve_close_capacity_flag_is_checked() -> None:
    result = CliRunner().invoke(app, ["serve", "--close-capacity", "0"])
    assert result.exit_code == 2
    assert "--close-capacity: must be > 0, got 0.0" in result.stderr
