"""``wsload validate`` through Typer's CliRunner: exit codes, messages, and fuzzing with random
bytes, random TOML values at random key paths and mutated shipped scenarios — always exit 0 or 2
with ``wsload: error: <file>: ...``, never a traceback."""

from __future__ import annotations

import datetime
import itertools
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from wsload.cli import app
from wsload.scenario.model import METRICS
from wsload.scenario.parse import TABLE_KEYS, load_scenario, parse_scenario
from wsload.scenario.rules import RULE_KEYS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))
TEXTS = [path.read_text(encoding="utf-8") for path in SHIPPED]
GOOD = '[load]\nrate = 10\nduration = "1s"\n'
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


pytestmark = pytest.mark.usefixtures("bounded_sync")


def validate(*args: str) -> Result:
    return CliRunner().invoke(app, ["validate", *args])


def check(path: Path, result: Result) -> None:
    """The contract: exit 0 with the resolved scenario, or exit 2 with one error line."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert result.stderr == ""
        header, _, resolved = result.stdout.partition("\n")
        assert header == f"# {path}: ok"
        assert parse_scenario(resolved, source=str(path)) == load_scenario(path)
    else:
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert result.stderr.startswith(f"wsload: error: {path}: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


def write(tmp_path: Path, content: str | bytes, name: str = "s.toml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- plain cases ---------------------------------------------------------------------------------


def test_a_valid_file_prints_its_resolved_form(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = validate(str(path))
    assert result.exit_code == 0
    assert '\n[load]\nmodel = "arrival"\nrate = 10.0\nduration = "1s"\n' in result.stdout
    check(path, result)


def test_quiet_prints_only_ok_lines(tmp_path: Path) -> None:
    one, two = write(tmp_path, GOOD, "one.toml"), write(tmp_path, GOOD, "two.toml")
    result = validate("-q", str(one), str(two))
    assert (result.exit_code, result.stdout) == (0, f"{one}: ok\n{two}: ok\n")


def test_an_invalid_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[load]\nrate = -5\nduration = "1s"\n')
    result = validate(str(path))
    assert result.exit_code == 2
    assert result.stderr == f"wsload: error: {path}: load.rate: must be > 0, got -5\n"
    check(path, result)


def test_every_file_is_checked_and_one_error_fails_the_command(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD, "good.toml")
    bad = write(tmp_path, GOOD + "[sesion]\n", "bad.toml")
    missing = tmp_path / "missing.toml"
    result = validate("-q", str(bad), str(good), str(missing))
    assert result.exit_code == 2
    assert result.stdout == f"{good}: ok\n"
    assert result.stderr.splitlines() == [
        f"wsload: error: {bad}: sesion: unknown key (did you mean 'session'?) (allowed here: "
        "close, data, description, load, name, reconnect, seed, session, target, thresholds)",
        f"wsload: error: {missing}: no such file",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "not UTF-8 text"),
        (b"name = ", "invalid TOML: "),
        (b"a = " + b"[" * 3000 + b"]" * 3000, "invalid TOML: values nested too deeply"),
        (b"", "load.rate: the arrival model needs rate"),
    ],
)
def test_unreadable_or_empty_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, content)
    result = validate(str(path))
    check(path, result)
    assert result.stderr.startswith(f"wsload: error: {path}: {message}")


def test_a_directory_is_not_a_scenario(tmp_path: Path) -> None:
    result = validate(str(tmp_path))
    check(tmp_path, result)
    assert "cannot read" in result.stderr


def test_no_file_is_a_usage_error() -> None:
    result = validate()
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


# --- fuzzing ---------------------------------------------------------------------------------


@settings(FUZZ)
@given(
    st.binary(max_size=300)
    | st.builds(bytes.__add__, st.sampled_from(TEXTS).map(str.encode), st.binary(max_size=40))
)
def test_random_bytes(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content)
    check(path, validate(str(path)))


def _toml(value: Any) -> str:
    """Any TOML value as inline TOML (tables inline, arrays of tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_string(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _document(data: dict[str, Any]) -> str:
    return "".join(f"{_string(key)} = {_toml(value)}\n" for key, value in data.items())


_text = st.text(st.characters(codec="utf-8"), max_size=12)
_leaves = (
    st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.integers(-3, 5000)
    | st.floats()
    | _text
    | st.sampled_from(["10s", "0s", "-1ms", "1h30m", "250ms", "1e3s", "", "builtin", "ws://a/"])
    | st.sampled_from(["clean", "terminate", "storm", "concurrency", "echo", "< 50ms", "> 99%"])
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
    | st.times()
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


def _paths() -> list[list[Any]]:
    prefix: dict[str, list[Any]] = {
        "": [],
        "target": ["target"],
        "target.server": ["target", "server"],
        "load": ["load"],
        "load.stages": ["load", "stages", 0],
        "load.search": ["load", "search"],
        "session": ["session"],
        "close": ["close", 0],
        "delay": ["session", "hold"],
        "target.process": ["target", "process"],
        "target.process.events": ["target", "process", "events", 0],
        "reconnect": ["reconnect"],
        "reconnect.backoff": ["reconnect", "backoff"],
        "data": ["data"],
    }
    paths = [[*prefix[t], key] for t, keys in TABLE_KEYS.items() for key in keys]
    paths += [["close", 1, key] for key in TABLE_KEYS["close"]]
    paths += [["session", "on", 0, key] for key in RULE_KEYS]
    paths += [["session", "steps", 0, key] for key in ("expect", "save")]
    paths += [["thresholds", f"{m}.p99"] for m in METRICS]
    paths += [["thresholds", e] for e in ("outcomes.clean", "behaviours.clean.connect.max")]
    paths += [["thresholds", e] for e in ("events.0.closed_clean", "events.0.eof.p99")]
    paths += [["target", "url"], ["target", "process", "env", "X"]]
    paths += [["target", "headers", "X-Test"], ["thresholds"], ["close"], ["load", "stages"]]
    return paths


def _put(doc: dict[str, Any], path: list[Any], value: Any) -> None:
    """Set ``value`` at ``path``, creating (or replacing) containers on the way."""
    node: Any = doc
    for step, nxt in itertools.pairwise(path):
        fresh: Any = [] if isinstance(nxt, int) else {}
        if isinstance(step, int):
            while len(node) <= step:
                node.append({})
            if not isinstance(node[step], type(fresh)):
                node[step] = fresh
        elif not isinstance(node.get(step), type(fresh)):
            node[step] = fresh
        node = node[step]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append({})
    node[last] = value


_documents = st.sampled_from(TEXTS).map(tomllib.loads)
_edits = st.lists(
    st.tuples(st.sampled_from(_paths()) | st.lists(_text, min_size=1, max_size=3), _values),
    min_size=1,
    max_size=3,
)


@settings(FUZZ)
@given(_documents, _edits)
def test_random_values_at_random_key_paths(
    tmp_path: Path, doc: dict[str, Any], edits: list[tuple[list[Any], Any]]
) -> None:
    for path, value in edits:
        _put(doc, path, value)
    file = write(tmp_path, _document(doc))
    check(file, validate(str(file)))


@st.composite
def _mutants(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "copy", "swap", "replace", "insert", "cut"]))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "copy":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "replace":
            key = lines[i].partition("=")[0]
            lines[i] = key + "= " + _toml(draw(_values)) if "=" in lines[i] else draw(_text)
        else:
            at = draw(st.integers(0, len(lines[i])))
            piece = draw(_text) if op == "insert" else ""
            end = at if op == "insert" else at + draw(st.integers(1, 5))
            lines[i] = lines[i][:at] + piece + lines[i][end:]
        if not lines:
            break
    return "\n".join(lines) + "\n"


@settings(FUZZ)
@given(_mutants())
def test_mutated_shipped_scenarios(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    check(path, validate(str(path)))
