"""Every key of every table: accepted with its default, rejected with a message that names the
file, the key path and what was expected, and typos answered with a "did you mean" hint."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from wsload.core.deflate import DeflateSettings
from wsload.core.matching import Matcher
from wsload.core.script import Rule, Send
from wsload.core.templates import Template
from wsload.errors import ScenarioError
from wsload.scenario.close import CLOSE_KIND_KEYS
from wsload.scenario.dump import scenario_hash, scenario_to_toml
from wsload.scenario.model import (
    Backoff,
    CloseSpec,
    DataConfig,
    Delay,
    LoadConfig,
    ProcessConfig,
    ProcessEvent,
    ReconnectConfig,
    Scenario,
    SearchConfig,
    ServerConfig,
    SessionConfig,
    Stage,
    TargetConfig,
)
from wsload.scenario.parse import TABLE_KEYS, load_scenario, parse_scenario

SOURCE = "bad.toml"
BASE: dict[str, dict[str, str]] = {"load": {"rate": "10", "duration": '"1s"'}}


pytestmark = pytest.mark.usefixtures("bounded_sync")


def render(over: dict[str, Any] | None = None) -> str:
    """TOML text: ``BASE`` with ``over`` merged in (values are TOML literals; None removes).

    ``over`` maps a table name (``""`` for top level, ``"target.server"``...) to its keys (None:
    drop the table), and ``"close"`` to a list of ``[[close]]`` tables.
    """
    tables: dict[str, dict[str, str]] = {"": {}, **{k: dict(v) for k, v in BASE.items()}}
    closes: list[dict[str, str]] = []
    for name, content in (over or {}).items():
        if name == "close":
            closes = content
            continue
        if content is None:
            tables.pop(name, None)
            continue
        table = tables.setdefault(name, {})
        for key, value in content.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    def lines(table: dict[str, str]) -> list[str]:
        return [f"{json.dumps(k) if '.' in k or ' ' in k else k} = {v}" for k, v in table.items()]

    out = lines(tables.pop(""))
    for name, table in tables.items():
        out += [f"[{name}]", *lines(table)]
    for close in closes:
        out += ["[[close]]", *lines(close)]
    return "\n".join(out) + "\n"


def parse(over: dict[str, Any] | None = None) -> Scenario:
    return parse_scenario(render(over), source=SOURCE)


DEFAULT = parse()


def _first_close(attr: str) -> Callable[[Scenario], object]:
    return lambda s: getattr(s.close[0], attr)


def _close(**keys: str) -> dict[str, Any]:
    return {"close": [keys]}


# (over, how to read the value back, expected value, is the expected value the default?)
Row = tuple[dict[str, Any], Callable[[Scenario], object], object]
# fmt: off
KEY_ROWS: dict[tuple[str, str], Row] = {
    ("", "name"): ({"": {"name": '"scenario"'}}, lambda s: s.name, "scenario"),
    ("", "seed"): ({"": {"seed": "7"}}, lambda s: s.seed, 7),
    ("", "description"): ({"": {"description": '""'}}, lambda s: s.description, ""),
    ("", "target"): ({"target": {}}, lambda s: s.target, TargetConfig()),
    ("", "load"): ({}, lambda s: s.load.model, "arrival"),
    ("", "session"): ({"session": {}}, lambda s: s.session, SessionConfig()),
    ("", "close"): (_close(kind='"clean"'), lambda s: s.close, DEFAULT.close),
    ("", "thresholds"): ({"thresholds": {}}, lambda s: s.thresholds, ()),
    ("target", "url"): ({"target": {"url": '"builtin"'}}, lambda s: s.target.url, "builtin"),
    ("target", "headers"): ({"target": {"headers": "{}"}}, lambda s: s.target.headers, ()),
    ("target", "subprotocols"): (
        {"target": {"subprotocols": "[]"}}, lambda s: s.target.subprotocols, ()),
    ("target", "origin"): (
        {"target": {"origin": '"https://a.test"'}}, lambda s: s.target.origin, "https://a.test"),
    ("target", "source_addresses"): (
        {"target": {"source_addresses": "[]"}}, lambda s: s.target.source_addresses, ()),
    ("target", "connect_timeout"): (
        {"target": {"connect_timeout": '"5s"'}}, lambda s: s.target.connect_timeout, 5.0),
    ("target", "handshake_timeout"): (
        {"target": {"handshake_timeout": '"5s"'}}, lambda s: s.target.handshake_timeout, 5.0),
    ("target", "insecure"): ({"target": {"insecure": "false"}}, lambda s: s.target.insecure, False),
    ("target", "ca_file"): (
        {"target": {"ca_file": json.dumps(__file__)}}, lambda s: s.target.ca_file, __file__),
    ("target", "server_name"): (
        {"target": {"server_name": '"a.test"'}}, lambda s: s.target.server_name, "a.test"),
    ("target", "engine"): (
        {"target": {"engine": '"wsproto"'}}, lambda s: s.target.engine, "wsproto"),
    ("target", "max_message_size"): (
        {"target": {"max_message_size": "1048576"}}, lambda s: s.target.max_message_size, 1 << 20),
    ("target", "server"): ({"target.server": {}}, lambda s: s.target.server, ServerConfig()),
    ("target", "compression"): (
        {"target": {"compression": '"none"'}}, lambda s: s.target.compression, None),
}
_SERVER_VALUES = {
    "messages": ('"echo"', "echo"),
    "close_reply": ('"normal"', "normal"),
    "close_reply_delay": ('"0s"', Delay()),
    "close_after": ('"1s"', 1.0),
    "close_after_messages": ("3", 3),
    "close_code": ("1000", 1000),
    "close_reason": ('""', ""),
    "close_action": ('"close"', "close"),
    "close_timeout": ('"30s"', 30.0),
    "reject_share": ("0.0", 0.0),
    "reject_status": ("503", 503),
    "upgrade_delay": ('"0s"', Delay()),
    "shutdown_after": ('"5s"', 5.0),
    "shutdown_code": ("1001", 1001),
    "shutdown_grace": ('"10s"', 10.0),
    "close_capacity": ("200", 200.0),
    "compression": ('"none"', None),
    "app": ('"pubsub"', "pubsub"),
    "app_pushes": ("5", 5),
    "app_push_interval": ('"100ms"', 0.1),
    "app_bye_code": ("4000", 4000),
}
_LOAD_VALUES = {
    "model": ({"model": '"arrival"'}, "arrival"),
    "rate": ({"rate": "10"}, 10.0),
    "concurrency": ({"model": '"concurrency"', "rate": None, "concurrency": "4"}, 4),
    "duration": ({"duration": '"1s"'}, 1.0),
    "connections": ({"duration": None, "connections": "5"}, 5),
    "stages": ({"stages": '[{ duration = "2s", rate = 5 }]'}, (Stage(2.0, rate=5.0),)),
    "max_in_flight": ({"max_in_flight": "10000"}, 10000),
    "open_deadline": ({"open_deadline": '"30s"'}, 30.0),
    "drain": ({"drain": '"30s"'}, 30.0),
    "shutdown_grace": ({"shutdown_grace": '"2s"'}, 2.0),
}
_SESSION_VALUES = {
    "messages": ("1", 1),
    "message_size": ("64", 64),
    "binary": ("false", False),
    "message_interval": ('"0s"', 0.0),
    "await_echo": ("true", True),
    "message_timeout": ('"10s"', 10.0),
    "hold": ('"0s"', Delay()),
    "ping_interval": ('"0s"', 0.0),
    "reflect": ("false", False),
}
# key: (kind it is tried with, TOML literal of the default, default value)
_CLOSE_VALUES = {
    "kind": ("clean", '"clean"', "clean"),
    "name": ("clean", '"clean"', "clean"),
    "weight": ("clean", "1", 1.0),
    "code": ("clean", "1000", 1000),
    "reason": ("clean", '""', ""),
    "timeout": ("clean", '"10s"', 10.0),
    "rst": ("terminate", "false", False),
    "on_timeout": ("await_server_close", '"clean"', "clean"),
    "send_interval": ("await_server_close", '"0s"', 0.0),
    "variant": ("invalid_close", '"code_1005"', "code_1005"),
}
# fmt: on
for _key, (_literal, _value) in _SERVER_VALUES.items():
    KEY_ROWS["target.server", _key] = (
        {"target.server": {_key: _literal}},
        attrgetter(f"target.server.{_key}"),
        _value,
    )
for _key, (_over, _value) in _LOAD_VALUES.items():
    KEY_ROWS["load", _key] = ({"load": _over}, attrgetter(f"load.{_key}"), _value)
for _key in TABLE_KEYS["load.stages"]:
    _model = "concurrency" if _key == "concurrency" else "arrival"
    _stage = f'{{ duration = "2s", {"concurrency" if _model == "concurrency" else "rate"} = 3 }}'
    _over = {"model": f'"{_model}"', "rate": None, "stages": f"[{_stage}]"}
    _expected = Stage(2.0, concurrency=3) if _model == "concurrency" else Stage(2.0, rate=3.0)
    KEY_ROWS["load.stages", _key] = ({"load": _over}, lambda s: s.load.stages, (_expected,))
# A search needs model = "search", no rate/duration of its own and at least one threshold.
_SEARCH_BASE = {"over": '"rate"', "start": "10", "max": "100"}
_SEARCH_VALUES = {
    "over": ('"storm_size"', "storm_size"),
    "start": ("20", 20.0),
    "max": ("50", 50.0),
    "factor": ("1.5", 1.5),
    "step_duration": ('"2s"', 2.0),
    "precision": ('"10%"', 0.1),
    "cooldown": ('"0s"', 0.0),
    "max_step_duration": ('"30s"', 30.0),
}


def _search_over(**keys: str) -> dict[str, Any]:
    return {
        "load": {"model": '"search"', "rate": None, "duration": None},
        "load.search": {**_SEARCH_BASE, **keys},
        "thresholds": {"close_handshake.p99": '"< 50ms"'},
    }


KEY_ROWS["load", "search"] = (
    _search_over(),
    lambda s: s.load.search,
    SearchConfig(over="rate", start=10.0, max=100.0, max_step_duration=20.0),  # 4 × 5 s
)
for _key, (_literal, _value) in _SEARCH_VALUES.items():
    KEY_ROWS["load.search", _key] = (
        _search_over(**{_key: _literal}),
        lambda s, key=_key: getattr(s.load.search, key, None),
        _value,
    )
for _key, (_literal, _value) in _SESSION_VALUES.items():
    KEY_ROWS["session", _key] = (
        {"session": {_key: _literal}},
        attrgetter(f"session.{_key}"),
        _value,
    )
KEY_ROWS["session", "on"] = (
    {"session": {"on": '[{ match = { equals = "2" }, send = "3" }]'}},
    attrgetter("session.on"),
    (Rule(Matcher.build("equals", "2"), Template.compile("3")),),
)
KEY_ROWS["session", "steps"] = (
    {"session": {"steps": '[{ send = "hi {seq}" }]'}},
    attrgetter("session.steps"),
    (Send(Template.compile("hi {seq}")),),
)
for _key, (_kind, _literal, _value) in _CLOSE_VALUES.items():
    _attr = "label" if _key == "name" else _key
    KEY_ROWS["close", _key] = (
        {"close": [{"kind": f'"{_kind}"', _key: _literal}]},
        _first_close(_attr),
        _value,
    )
KEY_ROWS["close", "send_payload"] = (  # no literal means "unset": not in _CLOSE_VALUES
    {"close": [{"kind": '"await_server_close"', "send_payload": '"2{seq}"'}]},
    _first_close("send_payload"),
    Template.compile("2{seq}"),
)
for _key in TABLE_KEYS["delay"]:
    KEY_ROWS["delay", _key] = (
        {"session": {"hold": f'{{ {_key} = "0s" }}'}},
        lambda s: s.session.hold,
        Delay(),
    )

# [target.process] needs a URL with {port} and a command; [reconnect] stands alone.
_MANAGED = {"target": {"url": '"ws://127.0.0.1:{port}/"'}}
_PROCESS = ProcessConfig(command=("x",))
_PROCESS_VALUES: dict[str, tuple[str, object]] = {
    "command": ('["x"]', ("x",)),
    "env": ('{ A = "b" }', (("A", "b"),)),
    "port": ("0", 0),
    "ready_timeout": ('"10s"', 10.0),
    "ready_line": ('"listening on [0-9]+"', "listening on [0-9]+"),
    "restart": ("false", False),
    "max_restarts": ("10", 10),
    "stop_signal": ('"SIGTERM"', "SIGTERM"),
    "stop_timeout": ('"10s"', 10.0),
    "events": ('[{ at = "1s" }]', (ProcessEvent(at=1.0),)),
}
KEY_ROWS["target", "require_subprotocol"] = (
    {"target": {"subprotocols": '["chat"]', "require_subprotocol": "true"}},
    attrgetter("target.require_subprotocol"),
    True,
)
KEY_ROWS["target", "process"] = (
    {**_MANAGED, "target.process": {"command": '["x"]'}},
    attrgetter("target.process"),
    _PROCESS,
)
for _key, (_literal, _value) in _PROCESS_VALUES.items():
    KEY_ROWS["target.process", _key] = (
        {**_MANAGED, "target.process": {"command": '["x"]', _key: _literal}},
        lambda s, key=_key: getattr(s.target.process, key, None),
        _value,
    )
for _key, _event in (("at", '{ at = "1s" }'), ("signal", '{ at = "1s", signal = "SIGTERM" }')):
    KEY_ROWS["target.process.events", _key] = (
        {"target.process": {"events": f"[{_event}]"}},
        lambda s: getattr(s.target.process, "events", None),
        (ProcessEvent(at=1.0),),
    )
KEY_ROWS["", "reconnect"] = ({"reconnect": {}}, attrgetter("reconnect"), ReconnectConfig())
_RECONNECT_VALUES: dict[str, tuple[str, object]] = {
    "on": ('["reset"]', ("reset",)),
    "backoff": ("{}", Backoff()),
    "max_attempts": ("20", 20),
}
KEY_ROWS["reconnect", "hold"] = (  # no literal means "unset"
    {"reconnect": {"hold": '"5s"'}},
    lambda s: getattr(s.reconnect, "hold", None),
    5.0,
)
for _key, (_literal, _value) in _RECONNECT_VALUES.items():
    KEY_ROWS["reconnect", _key] = (
        {"reconnect": {_key: _literal}},
        lambda s, key=_key: getattr(s.reconnect, key, None),
        _value,
    )
_BACKOFF_VALUES: dict[str, tuple[str, object]] = {
    "initial": ('"100ms"', 0.1),
    "max": ('"10s"', 10.0),
    "multiplier": ("2", 2.0),
    "jitter": ('"full"', "full"),
}
for _key, (_literal, _value) in _BACKOFF_VALUES.items():
    KEY_ROWS["reconnect.backoff", _key] = (
        {"reconnect": {"backoff": f"{{ {_key} = {_literal} }}"}},
        lambda s, key=_key: getattr(getattr(s.reconnect, "backoff", None), key, None),
        _value,
    )


USERS = Path(__file__).parent / "data" / "users.csv"
_DATA = DataConfig(file=str(USERS.resolve()), columns=("user", "token"))
KEY_ROWS["", "data"] = ({"data": {"file": json.dumps(str(USERS))}}, attrgetter("data"), _DATA)
_DATA_VALUES: dict[str, tuple[str, object]] = {
    "file": (json.dumps(str(USERS)), _DATA.file),
    "order": ('"sequential"', "sequential"),
    "secret_columns": ('["token"]', ("token",)),
}
for _key, (_literal, _value) in _DATA_VALUES.items():
    KEY_ROWS["data", _key] = (
        {"data": {"file": json.dumps(str(USERS)), _key: _literal}},
        lambda s, key=_key: getattr(s.data, key, None),
        _value,
    )


def test_every_key_the_parser_accepts_has_a_row() -> None:
    wanted = {(table, key) for table, keys in TABLE_KEYS.items() for key in keys}
    assert set(KEY_ROWS) == wanted


@pytest.mark.parametrize(("table", "key"), sorted(KEY_ROWS))
def test_every_key_is_accepted(table: str, key: str) -> None:
    over, read, expected = KEY_ROWS[table, key]
    assert read(parse(over)) == expected


_DEFAULTED = [
    (table, key)
    for (table, key), (over, read, expected) in KEY_ROWS.items()
    if read(DEFAULT) == expected and table not in ("close", "load.stages")
]


@pytest.mark.parametrize(("table", "key"), _DEFAULTED)
def test_a_key_set_to_its_default_changes_nothing(table: str, key: str) -> None:
    over, _, _ = KEY_ROWS[table, key]
    assert parse(over) == DEFAULT


@pytest.mark.parametrize(("key", "kind"), [(k, v[0]) for k, v in _CLOSE_VALUES.items()])
def test_a_close_key_set_to_its_default_changes_nothing(key: str, kind: str) -> None:
    _, literal, _ = _CLOSE_VALUES[key]
    bare = parse({"close": [{"kind": f'"{kind}"'}]})
    assert parse({"close": [{"kind": f'"{kind}"', key: literal}]}) == bare


@pytest.mark.parametrize(
    ("table", "cls", "renamed"),
    [
        ("target", TargetConfig, {}),
        ("target.server", ServerConfig, {}),
        ("load", LoadConfig, {}),
        ("load.stages", Stage, {}),
        ("load.search", SearchConfig, {}),
        ("session", SessionConfig, {}),
        ("close", CloseSpec, {"label": "name"}),
        ("delay", Delay, {}),
        ("", Scenario, {"source": None, "secrets": None}),
        ("target.process", ProcessConfig, {}),
        ("target.process.events", ProcessEvent, {}),
        ("reconnect", ReconnectConfig, {}),
        ("reconnect.backoff", Backoff, {}),
        ("data", DataConfig, {"columns": None, "rows": None}),
    ],
)
def test_table_keys_match_the_model(table: str, cls: type, renamed: dict[str, str | None]) -> None:
    names = [renamed.get(f.name, f.name) for f in fields(cls)]
    assert sorted(n for n in names if n is not None) == sorted(TABLE_KEYS[table])


def test_close_kind_keys_are_close_keys() -> None:
    for keys in CLOSE_KIND_KEYS.values():
        assert set(keys) <= set(TABLE_KEYS["close"]) - {"kind", "name", "weight"}


def test_defaults_match_the_model_defaults() -> None:
    assert DEFAULT.target == TargetConfig()
    assert DEFAULT.session == SessionConfig()
    assert DEFAULT.close == (CloseSpec(kind="clean", label="clean"),)
    assert DEFAULT.load == LoadConfig(rate=10.0, duration=1.0)
    assert DEFAULT.name == "scenario" and DEFAULT.source == SOURCE
    assert DEFAULT.seed is None and DEFAULT.thresholds == ()


def test_load_scenario_names_the_scenario_after_its_file(tmp_path: Path) -> None:
    path = tmp_path / "nightly-close.toml"
    path.write_text(render(), encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == "nightly-close" and scenario.source == str(path)


def test_ca_file_is_relative_to_the_scenario_and_stored_absolute(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("x", encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text(render({"target": {"ca_file": '"certs/ca.pem"'}}), encoding="utf-8")
    ca_file = load_scenario(path).target.ca_file
    assert ca_file == str((tmp_path / "certs" / "ca.pem").resolve())


# --- Rejections: (over, key path, fragments of the message) -------------------------------------

_LONG = '"' + "x" * 124 + '"'
# fmt: off
BAD: list[tuple[dict[str, Any], str, tuple[str, ...]]] = [
    # top level
    ({"": {"name": '"has space"'}}, "name", ("must be 1-64 letters", "'has space'")),
    ({"": {"name": "5"}}, "name", ("expected a string, got 5",)),
    ({"": {"seed": "-1"}}, "seed", ("must be >= 0, got -1",)),
    ({"": {"seed": '"x"'}}, "seed", ("expected an integer, got 'x'",)),
    ({"": {"seed": "1979-05-27"}}, "seed", ("expected an integer, got the date/time 1979-05-27",)),
    ({"": {"description": "1"}}, "description", ("expected a string, got 1",)),
    ({"": {"target": "5"}}, "target", ("expected a table, got 5",)),
    ({"": {"lod": "1"}}, "lod", ("unknown key (did you mean 'load'?)", "allowed here: close")),
    # [target]
    ({"target": {"url": '"http://a.test/"'}}, "target.url", ('"builtin" or a ws:// or wss://',)),
    ({"target": {"url": '"ws://"'}}, "target.url", ("no host",)),
    ({"target": {"url": '"ws://a.test:0/"'}}, "target.url", ("port must be 1-65535",)),
    ({"target": {"url": '"ws://a.test:99999/"'}}, "target.url", ("invalid URL", "out of range")),
    ({"target": {"url": '"ws://a.test/#x"'}}, "target.url", ("#fragment",)),
    ({"target": {"url": "1"}}, "target.url", ("expected a string, got 1",)),
    ({"target": {"headers": '{ "X Y" = "1" }'}}, 'target.headers."X Y"', ("not a valid HTTP",)),
    ({"target": {"headers": '{ Host = "h" }'}}, "target.headers.Host", ("set by wsload itself",)),
    ({"target": {"headers": '{ origin = "o" }'}}, "target.headers.origin",
     ("use target.origin instead",)),
    ({"target": {"headers": '{ Sec-WebSocket-Protocol = "p" }'}},
     "target.headers.Sec-WebSocket-Protocol", ("use target.subprotocols instead",)),
    ({"target": {"headers": "{ X-A = 1 }"}}, "target.headers.X-A", ("single-line string, got 1",)),
    ({"target": {"headers": '{ X-A = "a\\nb" }'}}, "target.headers.X-A", ("single-line",)),
    ({"target": {"headers": "5"}}, "target.headers", ("expected a table, got 5",)),
    ({"target": {"subprotocols": '"chat"'}}, "target.subprotocols", ("list of strings",)),
    ({"target": {"subprotocols": '["a b"]'}}, "target.subprotocols[0]", ("not a valid token",)),
    ({"target": {"source_addresses": '["localhost"]'}}, "target.source_addresses[0]",
     ("expected an IP address, got 'localhost'",)),
    ({"target": {"origin": "1"}}, "target.origin", ("expected a string, got 1",)),
    ({"target": {"connect_timeout": '"0s"'}}, "target.connect_timeout", ("must be > 0",)),
    ({"target": {"handshake_timeout": '"fast"'}}, "target.handshake_timeout",
     ('expected a duration like "250ms"', "got 'fast'")),
    ({"target": {"insecure": '"yes"'}}, "target.insecure", ("expected true or false, got 'yes'",)),
    ({"target": {"ca_file": '"/nonexistent/ca.pem"'}}, "target.ca_file", ("no such file",)),
    ({"target": {"server_name": "[]"}}, "target.server_name", ("expected a string, got a list",)),
    ({"target": {"engine": '"wsprot"'}}, "target.engine",
     ("expected one of 'wsproto', 'trio-websocket'", "did you mean 'wsproto'?")),
    ({"target": {"max_message_size": "0"}}, "target.max_message_size", ("must be >= 1, got 0",)),
    ({"target": {"max_message_size": "10"}}, "session.message_size",
     ("exceeds target.max_message_size (10)",)),
    ({"target": {"url": '"ws://a.test/"', "server": "{}"}}, "target.server",
     ('only allowed with url = "builtin"',)),
    ({"target": {"ulr": '"ws://a.test/"'}}, "target.ulr", ("did you mean 'url'?",)),
    ({"target": {"compression": '"gzip"'}}, "target.compression",
     ('expected "none", "deflate" or a table, got \'gzip\'',)),
    ({"target": {"compression": "{ client_max_window_bits = 16 }"}},
     "target.compression.client_max_window_bits", ("must be 8-15",)),
    ({"target": {"compression": "{ server_max_window_bits = 7 }"}},
     "target.compression.server_max_window_bits", ("must be >= 8, got 7",)),
    ({"target": {"compression": "{ threshold = -1 }"}}, "target.compression.threshold",
     ("must be >= 0",)),
    ({"target": {"compression": "{ client_no_context_takeover = 1 }"}},
     "target.compression.client_no_context_takeover", ("expected true or false",)),
    ({"target": {"compression": "{ windowbits = 9 }"}}, "target.compression.windowbits",
     ("unknown key", "allowed here: client_max_window_bits")),
    ({"target": {"compression": '{ offer = "leen" }'}}, "target.compression.offer",
     ("expected one of 'browser', 'lean', got 'leen'", "did you mean 'lean'?")),
    ({"target": {"compression": "{ offer = 9 }"}}, "target.compression.offer",
     ("expected a string, got 9",)),
    ({"target": {"compression": '{ ofer = "lean" }'}}, "target.compression.ofer",
     ("did you mean 'offer'?",)),
    ({"target": {"compression": '{ offer = "lean", server_max_window_bits = 16 }'}},
     "target.compression.server_max_window_bits", ("must be 8-15", "got 16")),
    ({"target": {"compression": '"lean"'}}, "target.compression",
     ('expected "none", "deflate" or a table, got \'lean\'',)),
    ({"target": {"compression": '"deflate"', "engine": '"trio-websocket"'}},
     "target.compression", ('needs engine = "wsproto"',)),
    # [target.server]
    ({"target.server": {"messages": '"eco"'}}, "target.server.messages", ("did you mean 'echo'",)),
    ({"target.server": {"close_reply": '"nevr"'}}, "target.server.close_reply",
     ("expected one of 'normal', 'never', 'drop'", "did you mean 'never'")),
    ({"target.server": {"close_reply_delay": '{ min = "5ms", max = "1ms" }'}},
     "target.server.close_reply_delay.max", ("must be >= min ('5ms')",)),
    ({"target.server": {"close_reply_delay": '{ mn = "1ms" }'}},
     "target.server.close_reply_delay.mn", ("did you mean 'min'?", "allowed here: max, min")),
    ({"target.server": {"close_reply_delay": "[1]"}}, "target.server.close_reply_delay",
     ("got a list",)),
    ({"target.server": {"close_after": '"0s"'}}, "target.server.close_after", ("must be > 0",)),
    ({"target.server": {"close_after_messages": "0"}}, "target.server.close_after_messages",
     ("must be >= 1, got 0",)),
    ({"target.server": {"close_code": "1005"}}, "target.server.close_code",
     ("1005 may not be sent in a Close frame",)),
    ({"target.server": {"close_reason": _LONG}}, "target.server.close_reason",
     ("at most 123 UTF-8 bytes, got 124",)),
    ({"target.server": {"close_action": '"kill"'}}, "target.server.close_action",
     ("expected one of 'close', 'fin', 'rst'",)),
    ({"target.server": {"close_timeout": '"0s"'}}, "target.server.close_timeout", ("> 0",)),
    ({"target.server": {"reject_share": "1.5"}}, "target.server.reject_share",
     ("fraction between 0 and 1",)),
    ({"target.server": {"reject_share": "-0.1"}}, "target.server.reject_share", (">= 0",)),
    ({"target.server": {"reject_status": "101"}}, "target.server.reject_status",
     ("200-599 other than 101, got 101",)),
    ({"target.server": {"reject_status": "600"}}, "target.server.reject_status", ("got 600",)),
    ({"target.server": {"upgrade_delay": '"-1ms"'}}, "target.server.upgrade_delay", ("'-1ms'",)),
    ({"target.server": {"shutdown_after": "0"}}, "target.server.shutdown_after", ("> 0, got 0",)),
    ({"target.server": {"shutdown_code": "1006"}}, "target.server.shutdown_code",
     ("1006 may not be sent",)),
    ({"target.server": {"shutdown_grace": '"soon"'}}, "target.server.shutdown_grace", ("'soon'",)),
    ({"target.server": {"compression": '"deflat"'}}, "target.server.compression",
     ("did you mean 'deflate'",)),
    ({"target.server": {"close_afer": '"1s"'}}, "target.server.close_afer",
     ("did you mean 'close_after'?",)),
    # [load]
    ({"load": {"model": '"open"'}}, "load.model",
     ("expected one of 'arrival', 'concurrency', 'storm', 'search', got 'open'",)),
    ({"load": {"rate": "-5"}}, "load.rate", ("must be > 0, got -5",)),
    ({"load": {"rate": "0"}}, "load.rate", ("must be > 0, got 0",)),
    ({"load": {"rate": '"fast"'}}, "load.rate", ("expected a number, got 'fast'",)),
    ({"load": {"rate": "nan"}}, "load.rate", ("must be finite, got nan",)),
    ({"load": {"rate": "inf"}}, "load.rate", ("must be finite, got inf",)),
    ({"load": {"rate": "1" + "0" * 400}}, "load.rate", ("must be finite",)),
    ({"load": {"rate": None}}, "load.rate", ("the arrival model needs rate",)),
    ({"load": {"duration": None}}, "load.duration", ("needs duration or connections",)),
    ({"load": {"concurrency": "5"}}, "load.concurrency", ("not used by the arrival model",)),
    ({"load": {"model": '"concurrency"', "rate": None}}, "load.concurrency",
     ("the concurrency model needs concurrency",)),
    ({"load": {"model": '"concurrency"', "concurrency": "2"}}, "load.rate",
     ("not used by the concurrency model",)),
    ({"load": {"model": '"concurrency"', "rate": None, "concurrency": "0"}}, "load.concurrency",
     ("must be >= 1, got 0",)),
    ({"load": {"model": '"concurrency"', "rate": None, "concurrency": "2", "duration": None}},
     "load.duration", ("the concurrency model needs duration or connections",)),
    ({"load": {"model": '"storm"', "duration": None}}, "load.concurrency",
     ("the storm model needs concurrency",)),
    ({"load": {"model": '"storm"', "concurrency": "5", "duration": None,
               "stages": '[{ duration = "1s", concurrency = 5 }]'}},
     "load.stages", ("not used by the storm model",)),
    ({"load": {"model": '"storm"', "concurrency": "5", "duration": None, "connections": "5"}},
     "load.connections", ("not used by the storm model",)),
    ({"load": {"model": '"storm"', "concurrency": "5"}}, "load.duration",
     ("not used by the storm model",)),
    ({"load": {"connections": "0"}}, "load.connections", ("must be >= 1, got 0",)),
    ({"load": {"duration": '"0s"'}}, "load.duration", ("must be > 0",)),
    ({"load": {"stages": "[]"}}, "load.stages", ("non-empty list",)),
    ({"load": {"stages": "[1]"}}, "load.stages[0]", ("expected a table, got 1",)),
    ({"load": {"stages": "[{ rate = 5 }]"}}, "load.stages[0].duration", ("required",)),
    ({"load": {"stages": '[{ duration = "1s" }]'}}, "load.stages[0].rate",
     ("required for the arrival model",)),
    ({"load": {"stages": '[{ duration = "1s", concurrency = 5 }]'}}, "load.stages[0].concurrency",
     ("not used by the arrival model (its stages take rate)",)),
    ({"load": {"stages": '[{ duration = "1s", rate = 5, rat = 1 }]'}}, "load.stages[0].rat",
     ("did you mean 'rate'?",)),
    ({"load": {"stages": '[{ duration = "0s", rate = 5 }]'}}, "load.stages[0].duration",
     ("must be > 0",)),
    ({"load": {"stages": '[{ duration = "1s", rate = -1 }]'}}, "load.stages[0].rate",
     ("must be >= 0, got -1",)),
    ({"load": {"model": '"concurrency"', "rate": None,
               "stages": '[{ duration = "1s", concurrency = -1 }]'}},
     "load.stages[0].concurrency", ("must be >= 0, got -1",)),
    ({"load": {"max_in_flight": "0"}}, "load.max_in_flight", ("must be >= 1, got 0",)),
    ({"load": {"open_deadline": '"0s"'}}, "load.open_deadline", ("must be > 0",)),
    ({"load": {"drain": '"x"'}}, "load.drain", ("got 'x'",)),
    ({"load": {"shutdown_grace": "-1"}}, "load.shutdown_grace", ("finite duration >= 0, got -1",)),
    ({"load": {"max_inflight": "5"}}, "load.max_inflight", ("did you mean 'max_in_flight'?",)),
    # a typo is reported as a typo, not as the setting it failed to set
    ({"load": {"rate": None, "rat": "5"}}, "load.rat", ("did you mean 'rate'?",)),
    ({"load": None, "loads": {"rate": "5"}}, "loads", ("did you mean 'load'?",)),
    # [session]
    ({"session": {"messages": "-1"}}, "session.messages", ("must be >= 0, got -1",)),
    ({"session": {"message_size": "-1"}}, "session.message_size", ("must be >= 0",)),
    ({"session": {"binary": "1"}}, "session.binary", ("expected true or false, got 1",)),
    ({"session": {"message_interval": '"x"'}}, "session.message_interval", ("got 'x'",)),
    ({"session": {"await_echo": '"no"'}}, "session.await_echo", ("true or false, got 'no'",)),
    ({"session": {"message_timeout": "0"}}, "session.message_timeout", ("must be > 0, got 0",)),
    ({"session": {"hold": '{ min = "2s", max = "1s" }'}}, "session.hold.max", ("must be >= min",)),
    ({"session": {"ping_interval": "-1"}}, "session.ping_interval", (">= 0, got -1",)),
    ({"session": {"reflect": '"true"'}}, "session.reflect", ("true or false, got 'true'",)),
    ({"session": {"mesages": "1"}}, "session.mesages", ("did you mean 'messages'?",)),
    # [thresholds] (details in test_scenario_thresholds.py)
    ({"thresholds": {"connect.p99": "5"}}, "thresholds.connect.p99",
     ('expected a condition string like "< 50ms"',)),
]
# fmt: on


def _error(over: dict[str, Any]) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse(over)
    return info.value


@pytest.mark.parametrize(("over", "key", "fragments"), BAD, ids=[f"{row[1]}" for row in BAD])
def test_bad_values_name_file_key_and_expectation(
    over: dict[str, Any], key: str, fragments: tuple[str, ...]
) -> None:
    error = _error(over)
    assert (error.source, error.key) == (SOURCE, key), str(error)
    assert str(error).startswith(f"{SOURCE}: {key}: ")
    for fragment in fragments:
        assert fragment in error.message, str(error)


def test_the_design_notes_example_message() -> None:
    assert str(_error({"load": {"rate": "-5"}})) == "bad.toml: load.rate: must be > 0, got -5"


def test_invalid_toml_is_a_scenario_error_with_the_position() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name = \n", source=SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: invalid TOML: ")
    assert "line 1" in str(info.value)


def test_deeply_nested_toml_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="nested too deeply"):
        parse_scenario("a = " + "[" * 5000 + "]" * 5000, source=SOURCE)


def test_an_invalid_file_name_asks_for_a_name(tmp_path: Path) -> None:
    path = tmp_path / "my scenario.toml"
    path.write_text(render(), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == "name"
    assert "the file name 'my scenario' is not a valid scenario name; set name" in str(info.value)
    path.write_text('name = "mine"\n' + render(), encoding="utf-8")
    assert load_scenario(path).name == "mine"


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "cannot read"),
        (lambda p: p.write_bytes(b"name = '\xff'"), "not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path: Path, setup: Callable[[Path], object], fragment: str) -> None:
    path = tmp_path / "s.toml"
    setup(path)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {fragment}" or str(info.value).startswith(
        f"{path}: {fragment}: "
    )


@pytest.mark.parametrize(
    ("literal", "expected", "dumped"),
    [
        ('"deflate"', DeflateSettings(), '"deflate"'),
        ("{}", DeflateSettings(), '"deflate"'),
        (
            "{ client_max_window_bits = 10, server_max_window_bits = 12, "
            "client_no_context_takeover = true, server_no_context_takeover = true, "
            "threshold = 128 }",
            DeflateSettings(10, 12, True, True, 128),
            "{ client_max_window_bits = 10, server_max_window_bits = 12, "
            "client_no_context_takeover = true, server_no_context_takeover = true, "
            "threshold = 128 }",
        ),
        ("{ threshold = 16 }", DeflateSettings(threshold=16), None),
        ('{ offer = "browser" }', DeflateSettings(), '"deflate"'),
        ('{ offer = "lean" }', DeflateSettings(9, 9), '{ offer = "lean" }'),
        (
            '{ offer = "lean", server_max_window_bits = 10, client_no_context_takeover = true }',
            DeflateSettings(9, 10, client_no_context_takeover=True),
            None,
        ),
        (  # the named offer's own values win only where the table says nothing
            '{ offer = "lean", threshold = 64 }',
            DeflateSettings(9, 9, threshold=64),
            "{ client_max_window_bits = 9, server_max_window_bits = 9, "
            "client_no_context_takeover = false, server_no_context_takeover = false, "
            "threshold = 64 }",
        ),
    ],
)
def test_compression(literal: str, expected: DeflateSettings, dumped: str | None) -> None:
    scenario = parse({"target": {"compression": literal}})
    assert scenario.target.compression == expected
    text = scenario_to_toml(scenario)
    if dumped is not None:
        assert f"compression = {dumped}" in text
    assert parse_scenario(text, source=SOURCE) == scenario


def test_no_compression_leaves_the_resolved_scenario_and_its_hash_as_they_were() -> None:
    plain = parse({})
    assert "compression" not in scenario_to_toml(plain)
    assert parse({"target": {"compression": '"none"'}}) == plain
    assert scenario_hash(parse({"target": {"compression": '"deflate"'}})) != scenario_hash(plain)
    server = parse({"target.server": {"compression": '"deflate"'}})
    assert server.target.server.compression == "deflate"
    assert 'compression = "deflate"' in scenario_to_toml(server)
