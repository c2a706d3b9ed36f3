"""The resolved dump: ``parse(dump(s)) == s`` for every shipped scenario and for any valid
scenario hypothesis can build, plus the dict shape and the hash that ``compare`` relies on."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsload.scenario.dump import scenario_hash, scenario_to_dict, scenario_to_toml
from wsload.scenario.model import (
    INVALID_VARIANTS,
    CloseSpec,
    Delay,
    LoadConfig,
    Scenario,
    ServerConfig,
    SessionConfig,
    Stage,
    TargetConfig,
    Threshold,
)
from wsload.scenario.parse import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))
SOURCE = "gen.toml"


pytestmark = pytest.mark.usefixtures("bounded_sync")


def reparse(scenario: Scenario) -> Scenario:
    return parse_scenario(scenario_to_toml(scenario), source=scenario.source)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scenarios_round_trip(path: Path) -> None:
    scenario = load_scenario(path)
    assert reparse(scenario) == scenario
    assert scenario_to_toml(reparse(scenario)) == scenario_to_toml(scenario)


# --- hypothesis: any valid Scenario --------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=30)
_reason = _text.filter(lambda r: len(r.encode()) <= 123)
_code = st.integers(1000, 1003) | st.integers(1007, 1014) | st.integers(3000, 4999)
_seconds = st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
_positive = st.floats(1e-9, 1e9, allow_nan=False, allow_infinity=False)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_token = st.text(_ALNUM + "!#$%&'*+.^_`|~-", min_size=1, max_size=12)
_label = st.builds(str.__add__, st.sampled_from(_ALNUM), st.text(_ALNUM + "_-", max_size=15))
_name = st.builds(str.__add__, st.sampled_from(_ALNUM), st.text(_ALNUM + "._-", max_size=20))


@st.composite
def _delays(draw: st.DrawFn) -> Delay:
    low = draw(_seconds)
    return Delay(low, draw(st.one_of(st.just(low), st.floats(low, 2e9, allow_nan=False))))


_servers = st.builds(
    ServerConfig,
    messages=st.sampled_from(["echo", "sink"]),
    close_reply=st.sampled_from(["normal", "never", "drop"]),
    close_reply_delay=_delays(),
    close_after=st.none() | _positive,
    close_after_messages=st.none() | st.integers(1, 10**6),
    close_code=_code,
    close_reason=_reason,
    close_action=st.sampled_from(["close", "fin", "rst"]),
    close_timeout=_positive,
    reject_share=st.floats(0, 1),
    reject_status=st.integers(200, 599),
    upgrade_delay=_delays(),
    shutdown_after=st.none() | _positive,
    shutdown_code=_code,
    shutdown_grace=_seconds,
)
_urls = st.just("builtin") | st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}:{port}/{path}",
    st.sampled_from(["ws", "wss"]),
    st.sampled_from(["127.0.0.1", "[::1]", "localhost", "a.test"]),
    st.integers(1, 65535),
    st.sampled_from(["", "chat", "chat?id={seq}", "x/{seq}"]),
)
# what can go on the wire: ISO-8859-1, one line (the parser refuses anything else); no
# ``{env:...}``, which the parser resolves from the environment (a literal value cannot hold it)
_header_values = st.text(
    st.characters(codec="latin-1", exclude_characters="\r\n\0"), max_size=20
).filter(lambda v: "{env:" not in v)
_RESERVED = {"host", "upgrade", "connection", "origin", "content-length", "transfer-encoding"}
_headers = st.dictionaries(
    _token.filter(lambda n: n.lower() not in _RESERVED),
    _header_values,
    max_size=3,
).filter(lambda h: not any(n.lower().startswith("sec-websocket-") for n in h))


@st.composite
def _targets(draw: st.DrawFn, engine: str) -> TargetConfig:
    url = draw(_urls)
    return TargetConfig(
        url=url,
        headers=tuple(draw(_headers).items()),
        subprotocols=tuple(draw(st.lists(_token, max_size=3))),
        origin=draw(st.none() | _header_values),
        source_addresses=tuple(draw(st.lists(st.ip_addresses().map(str), max_size=2))),
        connect_timeout=draw(_positive),
        handshake_timeout=draw(_positive),
        insecure=draw(st.booleans()),
        ca_file=draw(st.none() | st.just(str(Path(__file__).resolve()))),
        server_name=draw(st.none() | _text),
        engine=engine,  # type: ignore[arg-type]
        max_message_size=draw(st.integers(1 << 16, 1 << 24)),
        server=draw(_servers) if url == "builtin" else ServerConfig(),
    )


@st.composite
def _loads(draw: st.DrawFn) -> LoadConfig:
    model = draw(st.sampled_from(["arrival", "concurrency", "storm"]))
    common: dict[str, Any] = {
        "max_in_flight": draw(st.integers(1, 10**6)),
        "open_deadline": draw(_positive),
        "drain": draw(_seconds),
        "shutdown_grace": draw(_seconds),
    }
    if model == "storm":
        rate = draw(st.none() | _positive)
        return LoadConfig("storm", rate=rate, concurrency=draw(st.integers(1, 10**5)), **common)
    stage_value = st.floats(0, 1e6, allow_nan=False) if model == "arrival" else st.integers(0, 999)
    stages = tuple(
        Stage(d, rate=v) if model == "arrival" else Stage(d, concurrency=v)  # type: ignore[arg-type]
        for d, v in draw(st.lists(st.tuples(_positive, stage_value), max_size=3))
    )
    level = draw(st.none() | (_positive if model == "arrival" else st.integers(1, 10**4)))
    if level is None and not stages:
        level = 1.0 if model == "arrival" else 1
    duration = draw(st.none() | _positive)
    connections = draw(st.none() | st.integers(1, 10**9))
    if duration is None and connections is None and not stages:
        duration = 1.0
    if model == "arrival":
        return LoadConfig("arrival", rate=level, duration=duration, connections=connections,
                          stages=stages, **common)  # fmt: skip
    return LoadConfig("concurrency", concurrency=level, duration=duration,  # type: ignore[arg-type]
                      connections=connections, stages=stages, **common)  # fmt: skip


@st.composite
def _closes(draw: st.DrawFn, engine: str) -> tuple[CloseSpec, ...]:
    kinds = ["clean", "terminate"]
    if engine == "wsproto":
        kinds += ["close_no_wait", "await_server_close", "ignore_server_close", "invalid_close"]
    labels = draw(st.lists(_label, min_size=1, max_size=4, unique=True))
    specs = []
    for label in labels:
        kind = draw(st.sampled_from(kinds))
        fields: dict[str, object] = {"weight": draw(_positive)}
        if kind in ("clean", "close_no_wait", "await_server_close"):
            fields.update(code=draw(_code), reason=draw(_reason))
        if kind in ("clean", "await_server_close", "ignore_server_close", "invalid_close"):
            fields["timeout"] = draw(_seconds)
        if kind in ("terminate", "await_server_close"):
            fields["rst"] = draw(st.booleans())
        if kind == "await_server_close":
            fields["on_timeout"] = draw(st.sampled_from(["clean", "terminate"]))
            fields["send_interval"] = draw(_seconds)
        if kind == "invalid_close":
            fields["variant"] = draw(st.sampled_from(INVALID_VARIANTS))
        specs.append(CloseSpec(kind=kind, label=label, **fields))  # type: ignore[arg-type]
    return tuple(specs)


_CONDITIONS = [
    ("close_handshake.p99", "< 50ms"),
    ("connect.max", ">= 1.5s"),
    ("session.count", "> 10"),
    ("outcomes.clean", "> 99.5%"),
    ("outcomes.reset", "== 0"),
    ("close_codes.received.1000", "!= 3"),
    ("close_codes.sent.4000", "<= 1%"),
    ("generator.saturated", "== false"),
]


def _thresholds(labels: list[str]) -> st.SearchStrategy[tuple[Threshold, ...]]:
    pairs = _CONDITIONS + [(f"behaviours.{label}.close_total.p50", "< 1s") for label in labels]
    chosen = st.lists(st.sampled_from(pairs), unique_by=lambda p: p[0], max_size=4)
    return chosen.map(lambda ps: tuple(_threshold(expr, cond, labels) for expr, cond in ps))


def _threshold(expr: str, cond: str, labels: list[str]) -> Threshold:
    closes = "".join(f'[[close]]\nkind = "terminate"\nname = "{label}"\n' for label in labels)
    text = f'[load]\nrate = 1\nduration = 1\n{closes}[thresholds]\n"{expr}" = "{cond}"\n'
    (threshold,) = parse_scenario(text).thresholds
    return threshold


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    engine = draw(st.sampled_from(["wsproto", "trio-websocket"]))
    target = draw(_targets(engine))
    closes = draw(_closes(engine))
    session = SessionConfig(
        messages=draw(st.integers(0, 10**6)),
        message_size=draw(st.integers(0, target.max_message_size)),
        binary=draw(st.booleans()),
        message_interval=draw(_seconds),
        await_echo=draw(st.booleans()),
        message_timeout=draw(_positive),
        hold=draw(_delays()),
        ping_interval=draw(_seconds),
        reflect=draw(st.booleans()),
    )
    return Scenario(
        name=draw(_name),
        source=SOURCE,
        seed=draw(st.none() | st.integers(0, 2**64)),
        description=draw(_text),
        target=target,
        load=draw(_loads()),
        session=session,
        close=closes,
        thresholds=draw(_thresholds([c.label for c in closes])),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_valid_scenario_round_trips(scenario: Scenario) -> None:
    text = scenario_to_toml(scenario)
    assert parse_scenario(text, source=SOURCE) == scenario
    assert scenario_to_dict(scenario) == _without_comments(text)


def _without_comments(text: str) -> dict[str, object]:
    """The dump as TOML data: what scenario_to_dict says it is."""
    data = tomllib.loads(text)
    data.setdefault("thresholds", {})
    return data


# --- dict shape, TOML details and the hash -------------------------------------------------------


def _base() -> Scenario:
    return parse_scenario('[load]\nrate = 5\nduration = "1s"\n', source=SOURCE)


def test_dict_uses_the_file_key_names_and_duration_strings() -> None:
    data = scenario_to_dict(_base())
    assert list(data) == ["name", "target", "load", "session", "close", "thresholds"]
    assert data["load"] == {
        "model": "arrival",
        "rate": 5.0,
        "duration": "1s",
        "max_in_flight": 10000,
        "open_deadline": "30s",
        "drain": "30s",
        "shutdown_grace": "2s",
    }
    assert data["close"] == [
        {
            "kind": "clean",
            "name": "clean",
            "weight": 1.0,
            "code": 1000,
            "reason": "",
            "timeout": "10s",
        }
    ]
    assert "close_after" not in data["target"]["server"]  # None (never) is left out


def test_server_table_only_for_the_builtin_target() -> None:
    remote = replace(_base(), target=TargetConfig(url="ws://127.0.0.1:9/"))
    assert "server" not in scenario_to_dict(remote)["target"]
    assert "[target.server]" not in scenario_to_toml(remote)
    assert "[target.server]" in scenario_to_toml(_base())


def test_strings_are_escaped_for_toml() -> None:
    tricky = 'quote " backslash \\ tab \t newline \n del \x7f nul \x00 é 😀'
    scenario = replace(_base(), description=tricky)
    text = scenario_to_toml(scenario)
    assert tomllib.loads(text)["description"] == tricky
    assert reparse(scenario) == scenario


def test_header_names_are_quoted_when_they_are_not_bare_keys() -> None:
    target = TargetConfig(url="ws://127.0.0.1:9/", headers=(("X-A", "1"), ("X.B", "2")))
    text = scenario_to_toml(replace(_base(), target=target))
    assert 'headers = { X-A = "1", "X.B" = "2" }' in text


def test_hash_ignores_name_and_description_but_not_behaviour() -> None:
    base = _base()
    assert scenario_hash(base) == scenario_hash(replace(base, name="other", description="d"))
    assert scenario_hash(base) != scenario_hash(replace(base, load=LoadConfig(rate=6, duration=1)))
    assert len(scenario_hash(base)) == 16 and int(scenario_hash(base), 16) >= 0
    assert scenario_hash(base) == scenario_hash(reparse(base))
