"""The shipped scenarios (valid, self-explaining, short) and docs/scenarios.md (complete, with
the parser's real defaults and valid examples)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wsload.cli import app
from wsload.core.outcomes import Outcome
from wsload.errors import ScenarioError
from wsload.plan.schedule import planned_end
from wsload.runner.modes.search_levels import worst_case_seconds
from wsload.scenario.close import CLOSE_KIND_KEYS
from wsload.scenario.dump import scenario_to_dict
from wsload.scenario.model import (
    CLOSE_KINDS,
    INVALID_VARIANTS,
    LOAD_MODELS,
    METRICS,
    STATS,
    Scenario,
)
from wsload.scenario.parse import TABLE_KEYS, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))
# The deploy scenarios manage a real server (scenarios/servers/) instead of the built-in one and
# hold 1,000 connections through a restart: tests/test_deploy_node.py runs them. The Socket.IO
# and graphql-ws ones also manage a real server: tests/process/test_real_protocols.py.
DEPLOYS = [p for p in SHIPPED if p.stem.startswith("deploy_")]
MANAGED = [p for p in SHIPPED if "process" in tomllib.loads(p.read_text("utf-8"))["target"]]
BUILTIN_SHIPPED = [p for p in SHIPPED if p not in MANAGED]
DOCS = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")


pytestmark = pytest.mark.usefixtures("bounded_sync")


# --- shipped scenarios ---------------------------------------------------------------------------


def test_one_scenario_per_close_kind_and_load_model() -> None:
    names = {path.stem for path in SHIPPED}
    assert {"quickstart", "shutdown_storm", *CLOSE_KINDS, *LOAD_MODELS} <= names
    for kind in CLOSE_KINDS:
        assert all(c.kind == kind for c in load_scenario(SCENARIOS / f"{kind}.toml").close[:1])
    for model in LOAD_MODELS:
        assert load_scenario(SCENARIOS / f"{model}.toml").load.model == model
    assert load_scenario(SCENARIOS / "arrival.toml").load.stages


def test_shutdown_storm_sweeps_await_server_close_clients() -> None:
    scenario = load_scenario(SCENARIOS / "shutdown_storm.toml")
    server = scenario.target.server
    assert server.shutdown_after is not None and server.shutdown_grace > 0
    assert "await_server_close" in {c.kind for c in scenario.close}
    last_start = planned_end(scenario.load)
    assert last_start is not None and last_start < server.shutdown_after  # all open in time


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scenario_passes_wsload_validate(path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# {path}: ok\n")
    assert result.stderr == ""


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scenario_says_which_question_it_answers(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert header, f"{path.name} must start with a comment"
    assert "?" in " ".join(header), f"{path.name}: the opening comment asks no question"
    assert f"`{path.name}`" in DOCS, f"{path.name} is not listed in docs/scenarios.md"


@pytest.mark.parametrize("path", BUILTIN_SHIPPED, ids=[p.name for p in BUILTIN_SHIPPED])
def test_shipped_scenario_targets_a_configured_builtin_server(path: Path) -> None:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    assert raw["target"]["url"] == "builtin"
    assert raw["target"].get("server"), "a [target.server] table makes the behaviour observable"
    assert load_scenario(path).seed is not None  # repeatable


def _expected_seconds(s: Scenario) -> float:
    """Rough wall time of a run on a quiet machine (process start-up excluded)."""
    load, server, session = s.load, s.target.server, s.session
    if load.model == "search":  # bounded by its announced worst case, not by one run
        return 0.0
    if load.model == "storm":
        schedule = (load.concurrency or 0) / load.rate if load.rate else 0.0
    else:
        end = planned_end(load)
        assert end is not None, "a shipped scenario must end by time"
        schedule = end
    life = session.messages * session.message_interval + session.hold.max
    waits = [server.close_reply_delay.max]
    for spec in s.close:
        if spec.kind in ("await_server_close", "ignore_server_close") and server.close_after:
            extra = server.close_timeout if spec.kind == "ignore_server_close" else 0.0
            waits.append(server.close_after + extra)
    end = schedule + life + max(waits)
    if server.shutdown_after is not None:
        end = max(end, server.shutdown_after + server.shutdown_grace)
    return end


def _peak_rate(s: Scenario) -> float:
    load = s.load
    if load.model == "search" and load.search is not None and load.search.over == "rate":
        return load.search.max
    if load.model == "concurrency":
        cycle = s.session.messages * s.session.message_interval + s.session.hold.min
        return max([load.concurrency or 0, *(st.concurrency or 0 for st in load.stages)]) / cycle
    return max([load.rate or 0.0, *(st.rate or 0.0 for st in load.stages)])


@pytest.mark.parametrize("path", MANAGED, ids=[p.name for p in MANAGED])
def test_managed_scenario_runs_a_shipped_server(path: Path) -> None:
    scenario = load_scenario(path)
    process = scenario.target.process
    assert process is not None and scenario.seed is not None
    assert process.command[0] == "node"
    assert (ROOT / process.command[1]).is_file() and process.command[1].startswith(
        "scenarios/servers/"
    )


@pytest.mark.parametrize("path", DEPLOYS, ids=[p.name for p in DEPLOYS])
def test_deploy_scenario_manages_a_shipped_server_and_reconnects(path: Path) -> None:
    scenario = load_scenario(path)
    process = scenario.target.process
    assert process is not None and process.events and process.restart
    assert scenario.reconnect is not None and scenario.seed is not None
    assert (SCENARIOS / "servers" / "deploy_server.js").is_file()


@pytest.mark.parametrize("path", BUILTIN_SHIPPED, ids=[p.name for p in BUILTIN_SHIPPED])
def test_shipped_scenario_is_short_and_modest(path: Path) -> None:
    scenario = load_scenario(path)
    assert _expected_seconds(scenario) <= 8.0
    assert _peak_rate(scenario) <= 500
    if scenario.load.model == "search":  # typically far shorter: the knee is found early
        assert worst_case_seconds(scenario.load) <= 40.0
    assert (scenario.load.concurrency or 0) <= 500
    for spec in scenario.close:  # every wait bounded well below a minute
        assert spec.kind in ("terminate", "close_no_wait") or spec.timeout <= 10


# --- docs/scenarios.md ---------------------------------------------------------------------------

_HEADINGS = {
    "": "## Top level",
    "target": "## `[target]`",
    "target.server": "## `[target.server]`",
    "load": "## `[load]`",
    "load.stages": "### `stages`",
    "load.search": "### `[load.search]`",
    "session": "## `[session]`",
    "close": "## `[[close]]`",
    "delay": "## Values: durations, delays, sizes",
    "target.process": "## `[target.process]`",
    "target.process.events": "### `[[target.process.events]]`",
    "reconnect": "## `[reconnect]`",
    "reconnect.backoff": "### `backoff`",
    "data": "## `[data]`",
}
_ROW = re.compile(r"^\| `([a-z_]+)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \| ([^|]*) \|$", re.M)


def _section(table: str) -> str:
    heading = _HEADINGS[table]
    start = DOCS.index(heading + "\n")
    rest = DOCS[start + len(heading) :]
    ends = [i for i in (rest.find("\n## "), rest.find("\n### ")) if i >= 0]
    return rest[: min(ends)] if ends else rest


def _rows(table: str) -> dict[str, tuple[str, str, str, str]]:
    return {m[1]: (m[2], m[3], m[4], m[5]) for m in _ROW.finditer(_section(table))}


@pytest.mark.parametrize("table", sorted(TABLE_KEYS))
def test_docs_list_exactly_the_keys_the_parser_accepts(table: str) -> None:
    assert sorted(_rows(table)) == sorted(TABLE_KEYS[table])


_BASE = {"load": {"rate": "10", "duration": '"1s"'}}
_CONTEXTS = [
    {"load": {"rate": "10", "duration": '"1s"'}},
    {"load": {"model": '"concurrency"', "concurrency": "5", "duration": '"1s"'}},
    {"load": {"model": '"storm"', "concurrency": "5"}},
]
_SEARCH = {
    "load": {"model": '"search"'},
    "load.search": {"over": '"rate"', "start": "10", "max": "100"},
    "thresholds": {'"outcomes.clean"': '"> 99%"'},
}
_CONTEXTS.append(_SEARCH)
_MANAGED = {
    "target": {"url": '"ws://127.0.0.1:{port}/"'},
    "target.process": {"command": '["x"]'},
    "load": {"rate": "10", "duration": '"1s"'},
}
_CONTEXTS.append(_MANAGED)
_CONTEXTS.append({**_BASE, "target": {"subprotocols": '["chat"]'}})  # require_subprotocol


def _document(context: dict[str, dict[str, str]], table: str, key: str, literal: str) -> str:
    """A scenario with ``key = literal`` in ``table`` on top of ``context``."""
    tables = {name: dict(keys) for name, keys in context.items()}
    top: list[str] = []
    closes = ""
    if table == "":
        top.append(f"{key} = {literal}")
    elif table == "close":
        kind = next((k for k, keys in CLOSE_KIND_KEYS.items() if key in keys), "clean")
        body = f"{key} = {literal}" if key == "kind" else f'kind = "{kind}"\n{key} = {literal}'
        closes = f"[[close]]\n{body}\n"
    elif table == "load.stages":
        tables["load"].pop("rate", None)
        tables["load"]["stages"] = f"[{literal}]"
    elif table == "delay":
        tables.setdefault("session", {})["hold"] = literal
    elif table == "target.process.events":
        at = "" if key == "at" else 'at = "1s", '
        tables.setdefault("target.process", {})["events"] = f"[{{ {at}{key} = {literal} }}]"
    elif table == "reconnect.backoff":
        tables.setdefault("reconnect", {})["backoff"] = f"{{ {key} = {literal} }}"
    else:
        tables.setdefault(table, {})[key] = literal
    lines = top + [
        f"[{name}]\n" + "\n".join(f"{k} = {v}" for k, v in keys.items())
        for name, keys in tables.items()
    ]
    return "\n".join(lines) + "\n" + closes


def _parses(text: str, base_dir: Path) -> bool:
    try:
        parse_scenario(text, base_dir=base_dir)
    except ScenarioError:
        return False
    return True


_DOCUMENTED = [(table, key) for table in sorted(TABLE_KEYS) for key in sorted(_rows(table))]
# Defaults written as a value (`"5s"`, maybe followed by a remark) or as "none"; the others
# ("required", "the file name", "see [target]", per-kind timeouts) are prose.
_VALUE_DEFAULTS = [
    (table, key, m[1])
    for table, key in _DOCUMENTED
    if table not in ("load.stages", "delay")
    and (m := re.match(r"`([^`]+)`(?: \(.*\))?$", _rows(table)[key][1]))
]
_NONE_DEFAULTS = [(t, k) for t, k in _DOCUMENTED if _rows(t)[k][1].startswith("none")]


def test_most_documented_defaults_are_checked() -> None:
    # 23: prose defaults such as "required" (6 of them: load.search's over, start and max,
    # target.process's command, an event's at, data.file), "see below" (reconnect.backoff) or
    # "the close's timeout" (reconnect.hold)
    assert len(_VALUE_DEFAULTS) + len(_NONE_DEFAULTS) >= len(_DOCUMENTED) - 23


@pytest.mark.parametrize(("table", "key", "literal"), _VALUE_DEFAULTS)
def test_documented_defaults_are_the_real_defaults(
    table: str, key: str, literal: str, tmp_path: Path
) -> None:
    plain = parse_scenario('[load]\nrate = 10\nduration = "1s"\n')
    if table == "data":  # compare with a bare [data] table
        (tmp_path / "users.csv").write_text("user,token\nu1,t1\n", encoding="utf-8")
        context = {**_BASE, "data": {"file": '"users.csv"'}}
        plain = parse_scenario(_document(context, "", "description", '""'), base_dir=tmp_path)
        got = parse_scenario(_document(context, table, key, literal), base_dir=tmp_path)
        assert got == plain
        return
    if table == "load.search":  # a search table only exists in a search scenario
        plain = parse_scenario(_document(_SEARCH, table, "over", '"rate"'))
        assert parse_scenario(_document(_SEARCH, table, key, literal)) == plain
        return
    if table.startswith(("target.process", "reconnect")):  # compare with the bare table
        context = _MANAGED if table.startswith("target.process") else {**_BASE, "reconnect": {}}
        bare = ("target.process.events", "at", '"1s"')  # an event needs its time
        plain_key = bare if table == bare[0] else ("", "description", '""')
        plain = parse_scenario(_document(context, *plain_key))
        assert parse_scenario(_document(context, table, key, literal)) == plain
        return
    if table == "close":  # compare with a bare [[close]] of a kind that takes the key
        kind = next((k for k, keys in CLOSE_KIND_KEYS.items() if key in keys), "clean")
        plain = parse_scenario(_document(_BASE, "close", "kind", f'"{kind}"'))
    assert parse_scenario(_document(_BASE, table, key, literal)) == plain


@pytest.mark.parametrize(("table", "key"), _NONE_DEFAULTS)
def test_documented_none_defaults_are_unset(table: str, key: str) -> None:
    text = '[load]\nrate = 10\nduration = "1s"\n'
    if table == "target.process":  # only a managed server has the table
        text = (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = ["x"]\n' + text
        )
    resolved = scenario_to_dict(parse_scenario(text))
    section = resolved
    for part in table.split(".") if table else []:
        section = section[part]
    if table == "load" and key in ("rate", "duration"):
        section = scenario_to_dict(
            parse_scenario('[load]\nconnections = 1\nstages = [{ duration = "1s", rate = 1 }]\n')
        )["load"]
    assert key not in section, f"{table}.{key} is documented as none but resolves to a value"


@pytest.mark.parametrize(("table", "key"), _DOCUMENTED)
def test_documented_examples_are_valid(table: str, key: str, tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("x", encoding="utf-8")
    (tmp_path / "users.csv").write_text("user,token\nu1,t1\n", encoding="utf-8")
    contexts = _CONTEXTS
    if table == "data":  # a [data] table needs its file
        contexts = [{**c, "data": {"file": '"users.csv"'}} for c in _CONTEXTS]
    example = _rows(table)[key][2].strip("`")
    if example.startswith("[") and example.endswith("]") and " " not in example:
        return  # a table header such as `[target]`
    if table in ("load.stages", "delay"):
        literal = example
    else:
        name, _, literal = example.partition(" = ")
        assert name == key, f"example {example!r} does not set {key}"
    assert any(
        _parses(_document(context, table, key, literal), tmp_path) for context in contexts
    ), f"example {example!r} is not accepted in any load model"


def test_docs_name_every_close_kind_with_its_keys() -> None:
    for kind, keys in CLOSE_KIND_KEYS.items():
        (row,) = [line for line in DOCS.splitlines() if line.startswith(f"| `{kind}` | ")]
        listed = row.split(" | ")[1]
        assert re.findall(r"`(\w+)`", listed) == list(keys), kind


def test_docs_name_every_variant_metric_stat_and_outcome() -> None:
    for variant in INVALID_VARIANTS:
        assert f"| `{variant}` |" in DOCS
    thresholds = DOCS[DOCS.index("## `[thresholds]`") :]
    for name in (*METRICS, *STATS, *(o.value for o in Outcome)):
        assert f"`{name}`" in thresholds, name
    for model in LOAD_MODELS:
        assert f"| `{model}` |" in DOCS
