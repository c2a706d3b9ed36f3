"""``--set KEY.PATH=VALUE``: values as TOML or plain strings, key paths with indices and quoted
keys, the parser's checks with errors naming ``--set``, the resolved scenario and its hash, the
three commands that take it, and fuzzing over key paths and values: never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result
from verdicts import assert_passed_or_saturated, summary_of

from wsload.cli import app
from wsload.errors import ScenarioError
from wsload.scenario.dump import scenario_hash, scenario_to_toml
from wsload.scenario.model import Scenario
from wsload.scenario.overrides import parse_setting
from wsload.scenario.parse import TABLE_KEYS, load_scenario, parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

BASE = """
name = "ci"
[target]
url = "ws://127.0.0.1:9/ws"
[load]
rate = 10
duration = "1s"
[[close]]
kind = "clean"
[[close]]
kind = "terminate"
[thresholds]
"close_handshake.p99" = "< 50ms"
"""


def parsed(*sets: str) -> Scenario:
    return parse_scenario(BASE, source="ci.toml", sets=sets)


def error(*sets: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parsed(*sets)
    return info.value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("load.rate=500", 500),
        ("load.rate=2.5", 2.5),
        ("load.rate = 7", 7),
        ('target.url="wss://staging.example/ws"', "wss://staging.example/ws"),
        ("target.url='ws://a/'", "ws://a/"),
        ("target.url=wss://staging.example/ws", "wss://staging.example/ws"),  # a plain string
        ("close[0].timeout=2s", "2s"),
        ("target.insecure=true", True),
        ('target.subprotocols=["chat", "v2"]', ["chat", "v2"]),
        ('target.server={ close_after = "1s" }', {"close_after": "1s"}),
        ("session.payload=hello world", "hello world"),
        ("session.payload=a=b", "a=b"),  # the first = splits
        ('session.payload=""', ""),
        ("target.url=$(id)", "$(id)"),  # a string, never evaluated
    ],
)
def test_values_are_toml_or_plain_strings(text: str, value: Any) -> None:
    assert parse_setting("ci.toml", text).value == value


@pytest.mark.parametrize(
    ("text", "path", "steps"),
    [
        ("load.rate=1", "load.rate", ("load", "rate")),
        ("close[1].timeout=1s", "close[1].timeout", ("close", 1, "timeout")),
        ('target.headers."X-Id"=a', "target.headers.X-Id", ("target", "headers", "X-Id")),
        ('target.headers."X Id"=a', 'target.headers."X Id"', ("target", "headers", "X Id")),
        (
            'thresholds."outcomes.clean"=> 99%',
            "thresholds.outcomes.clean",
            ("thresholds", "outcomes.clean"),
        ),
        ('thresholds."a=b"=1', 'thresholds."a=b"', ("thresholds", "a=b")),  # = inside quotes
        ("load.stages[0][1].rate=1", "load.stages[0][1].rate", ("load", "stages", 0, 1, "rate")),
    ],
)
def test_key_paths(text: str, path: str, steps: tuple[Any, ...]) -> None:
    setting = parse_setting("ci.toml", text)
    assert (setting.path, setting.steps) == (path, steps)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("load.rate", "--set", "expected KEY.PATH=VALUE"),
        ("=5", "--set ''", "not a key path"),
        ("load..rate=5", "--set 'load..rate'", "not a key path"),
        ("[0]=5", "--set '[0]'", "not a key path"),
        ("load.rate[x]=5", "--set 'load.rate[x]'", "not a key path"),
        ("a\nb=5", "--set 'a\\nb'", "not a key path"),
        ("load.rate=", "--set load.rate", "no value; an empty string is '\"\"'"),
        ("load.rate=  ", "--set load.rate", "no value"),
        ("load.rate=[1", "--set load.rate", "not a TOML value"),
        ('load.rate="1', "--set load.rate", "not a TOML value"),
        ("load.rate=1\nseed = 2", "--set load.rate", "not a TOML value (more than one value)"),
        ("session.payload=two\nlines", "--set session.payload", "not a TOML value"),
    ],
)
def test_malformed_settings_name_set_and_the_key(text: str, key: str, message: str) -> None:
    exc = error(text)
    assert (exc.source, exc.key) == ("ci.toml", key)
    assert message in exc.message, exc.message
    assert "\n" not in str(exc)


def test_settings_reach_the_scenario_and_a_later_one_wins() -> None:
    s = parsed(
        "load.rate=500",
        "load.rate=600",
        "target.url=builtin",
        "close[0].timeout=2s",
        "close[1].rst=true",
        "target.server.close_after=1s",  # [target.server] did not exist: created
        'thresholds."close_handshake.p99"=< 20ms',
        'thresholds."outcomes.clean"=> 99%',
    )
    assert s.load.rate == 600.0
    assert s.target.url == "builtin"
    assert (s.close[0].timeout, s.close[1].rst) == (2.0, True)
    assert s.target.server.close_after == 1.0
    assert [(t.expr, t.value) for t in s.thresholds] == [
        ("close_handshake.p99", 20_000.0),
        ("outcomes.clean", 0.99),
    ]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("load.rate=-5", "--set load.rate", "must be > 0, got -5"),
        ("load.rat=5", "--set load.rat", "unknown key (did you mean 'rate'?)"),
        ("seed=x", "--set seed", "expected an integer, got 'x'"),
        ("close[0].timeout=soon", "--set close[0].timeout", "soon"),
        ("close[2].timeout=1s", "--set close[2].timeout", "close has 2 entries (0-based index)"),
        ("close.timeout=1s", "--set close.timeout", "pick an entry, like close[0]"),
        ("target.url.host=x", "--set target.url.host", "target.url is a string, not a table"),
        ("load.rate[0]=1", "--set load.rate[0]", "load.rate is a number, not an array"),
        ("session.steps[0].send=x", "--set session.steps[0].send", "session.steps is not set"),
        ("load.model=storm", "load.concurrency (after --set load.model)", "needs concurrency"),
        ('thresholds."outcomes.nope"=> 1', "--set thresholds.outcomes.nope", "outcomes.<outcome>"),
    ],
)
def test_the_parsers_errors_name_set_and_the_key(text: str, key: str, message: str) -> None:
    exc = error(text)
    assert (exc.source, exc.key) == ("ci.toml", key)
    assert message in exc.message, exc.message


def test_an_error_of_the_file_itself_is_not_blamed_on_a_set() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE + "[session]\nmessages = -1\n", source="ci.toml", sets=["seed=3"])
    assert info.value.key == "session.messages"


def test_the_resolved_scenario_and_its_hash_show_the_final_values() -> None:
    plain, staging = parsed(), parsed("target.url=wss://staging.example/ws", "load.rate=50")
    assert scenario_hash(plain) != scenario_hash(staging)
    assert scenario_hash(parsed("load.rate=10")) == scenario_hash(plain)  # same value, same hash
    text = scenario_to_toml(staging)
    assert 'url = "wss://staging.example/ws"' in text and "rate = 50.0" in text
    assert parse_scenario(text, source="ci.toml") == staging


# --- the commands ------------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_validate_prints_the_set_values_with_secrets_redacted(tmp_path: Path) -> None:
    path = tmp_path / "ci.toml"
    path.write_text(BASE, encoding="utf-8")
    result = invoke(
        "validate", str(path),
        "--set", "target.headers.Authorization=Bearer s3cr3t-token",
        "--set", "load.rate=77",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in result.output
    assert 'headers = { Authorization = "REDACTED" }' in result.stdout
    assert "rate = 77.0" in result.stdout


@pytest.mark.parametrize("command", ["run", "search", "validate"])
def test_every_command_takes_set_and_exits_2_naming_it(tmp_path: Path, command: str) -> None:
    path = tmp_path / "ci.toml"
    path.write_text(BASE, encoding="utf-8")
    result = invoke(command, str(path), "--set", "load.rate=-1")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"wsload: error: {path}: --set load.rate: must be > 0, got -1\n"


def test_a_run_writes_the_final_values_and_their_hash(tmp_path: Path) -> None:
    path = tmp_path / "ci.toml"
    path.write_text(BASE, encoding="utf-8")
    out = tmp_path / "out"
    result = invoke(
        "run", str(path), "--out", str(out), "--quiet", "--no-report",
        "--set", "target.url=builtin",
        "--set", "load.connections=4",
        "--set", "load.rate=40",
        "--set", "target.headers.Authorization=Bearer s3cr3t-token",
    )  # fmt: skip
    assert_passed_or_saturated(result.exit_code, summary_of(out), result.output)
    resolved = load_scenario(out / "scenario.toml")
    assert (resolved.target.url, resolved.load.connections, resolved.load.rate) == (
        "builtin", 4, 40.0
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["attempted"] == 4
    assert summary["scenario_hash"] == scenario_hash(resolved)
    assert summary["scenario_hash"] != scenario_hash(load_scenario(path))
    for file in out.iterdir():
        assert b"s3cr3t" not in file.read_bytes(), file.name


# --- fuzzing: any key path, any value, never a traceback ---------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=10)
_known = [f"{table}.{key}" if table else key for table, keys in TABLE_KEYS.items() for key in keys]
_known = [k.replace("close.", "close[0].").replace("stages.", "stages[0].") for k in _known]
_segment = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True) | _text.map(json.dumps)
_paths = (
    st.sampled_from(_known)
    | st.lists(_segment, min_size=1, max_size=4).map(".".join)
    | st.builds("{}[{}].{}".format, st.sampled_from(["close", "load.stages", "target"]),
                st.integers(0, 3), st.sampled_from(["timeout", "kind", "rate", "x"]))
    | _text
)  # fmt: skip
_values = (
    _text
    | st.sampled_from(["500", "-1", "1e400", "inf", "nan", "true", "2s", '"2s"', "[1, 2]", "{}",
                       '{ a = 1 }', "1979-05-27", "[[[", '"', "''", "builtin", "ws://a/"])
    | st.integers(-(2**70), 2**70).map(str)
)  # fmt: skip
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(st.lists(st.tuples(_paths, _values), min_size=1, max_size=3))
def test_random_settings_never_a_traceback(tmp_path: Path, edits: list[tuple[str, str]]) -> None:
    path = tmp_path / "ci.toml"
    path.write_text(BASE, encoding="utf-8")
    sets = [f"{key}={value}" for key, value in edits]
    result = invoke("validate", str(path), *(arg for s in sets for arg in ("--set", s)))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        resolved = result.stdout.partition("\n")[2]
        assert parse_scenario(resolved, source=str(path)) == load_scenario(path, sets)
    else:
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"wsload: error: {path}: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
