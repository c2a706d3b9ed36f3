"""Scenario TOML → frozen ``Scenario``. The only place scenario input is interpreted.

Every mistake raises ``ScenarioError`` naming the file, the key path and what was expected
(``scenario.toml: load.rate: must be > 0, got -5``); unknown keys get a "did you mean" hint.
Nothing here executes code from the file: TOML is data only.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from wsload.core.codes import is_sendable
from wsload.errors import ScenarioError, UsageError
from wsload.scenario._table import Table, either, hint, show
from wsload.scenario.model import (
    CLOSE_KINDS,
    INVALID_VARIANTS,
    LOAD_MODELS,
    CloseSpec,
    LoadConfig,
    Scenario,
    ServerConfig,
    SessionConfig,
    Stage,
    TargetConfig,
)
from wsload.scenario.thresholds import parse_thresholds

__all__ = ["apply_overrides", "load_scenario", "parse_scenario", "parse_server_options"]


_MAX_REASON_BYTES = 123
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "content-length",
    "transfer-encoding",
}

# Keys each close kind accepts besides kind/weight/name.
_CLOSE_KEYS: dict[str, tuple[str, ...]] = {
    "clean": ("code", "reason", "timeout"),
    "terminate": ("rst",),
    "close_no_wait": ("code", "reason"),
    "await_server_close": ("timeout", "on_timeout", "code", "reason", "send_interval", "rst"),
    "ignore_server_close": ("timeout",),
    "invalid_close": ("variant", "timeout"),
}
_CLOSE_TIMEOUT_DEFAULT = {
    "clean": 10.0,
    "await_server_close": 30.0,
    "ignore_server_close": 60.0,
    "invalid_close": 10.0,
}


def load_scenario(path: str | Path) -> Scenario:
    """Read and parse a scenario file.

    Raises:
        ScenarioError: unreadable file, invalid TOML or any invalid key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(path), "", "no such file") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not UTF-8 text") from None
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    return parse_scenario(text, source=str(path), default_name=path.stem, base_dir=path.parent)


def parse_scenario(
    text: str,
    *,
    source: str = "scenario.toml",
    default_name: str = "scenario",
    base_dir: Path | None = None,
) -> Scenario:
    """Parse scenario TOML text. See docs/scenarios.md for every key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"invalid TOML: {exc}") from None
    root = Table(source, "", data)
    name = root.string("name", default_name)
    if not _NAME_RE.match(name):
        raise root.error(
            "name",
            f"must be 1-64 letters, digits, '.', '_' or '-' (it names the results directory), "
            f"got {name!r}",
        )
    seed = root.opt_integer("seed", 0)
    description = root.string("description", "")
    target = _target(root.table("target"), base_dir)
    load = _load(root.table("load"))
    session = _session(root.table("session"), target)
    closes = _closes(root, target)
    thresholds = parse_thresholds(root.table("thresholds"), tuple(c.label for c in closes))
    root.finish()
    return Scenario(
        name=name,
        source=source,
        seed=seed,
        description=description,
        target=target,
        load=load,
        session=session,
        close=closes,
        thresholds=thresholds,
    )


def _target(t: Table, base_dir: Path | None) -> TargetConfig:
    url = t.string("url", "builtin")
    if url != "builtin":
        _check_url(t, url)
    headers_table = t.table("headers")
    headers: list[tuple[str, str]] = []
    for hname, hvalue in headers_table.data.items():
        headers_table.known.append(hname)
        if not _TOKEN_RE.match(hname):
            raise headers_table.error(hname, "not a valid HTTP header name")
        if hname.lower() in _RESERVED_HEADERS:
            raise headers_table.error(
                hname, "set by wsload itself (use subprotocols/origin for those)"
            )
        if not isinstance(hvalue, str) or any(c in hvalue for c in "\r\n\0"):
            raise headers_table.error(hname, f"expected a single-line string, got {show(hvalue)}")
        headers.append((hname, hvalue))
    subprotocols = t.string_list("subprotocols")
    for i, proto in enumerate(subprotocols):
        if not _TOKEN_RE.match(proto):
            raise t.error(f"subprotocols[{i}]", f"not a valid token: {proto!r}")
    origin = t.opt_string("origin")
    sources = t.string_list("source_addresses")
    for i, addr in enumerate(sources):
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise t.error(
                f"source_addresses[{i}]", f"expected an IP address, got {addr!r}"
            ) from None
    ca_file = t.opt_string("ca_file")
    if ca_file is not None:
        ca_path = Path(ca_file) if base_dir is None else base_dir / ca_file
        if not ca_path.is_file():
            raise t.error("ca_file", f"no such file: {ca_path}")
        ca_file = str(ca_path)
    engine = t.choice("engine", ("wsproto", "trio-websocket"), "wsproto")
    server_given = t.has("server")
    server = _server(t.table("server"))
    if server_given and url != "builtin":
        raise t.error(
            "server", 'only allowed with url = "builtin" (it configures the built-in server)'
        )
    config = TargetConfig(
        url=url,
        headers=tuple(headers),
        subprotocols=subprotocols,
        origin=origin,
        source_addresses=sources,
        connect_timeout=t.duration("connect_timeout", 5.0, positive=True),
        handshake_timeout=t.duration("handshake_timeout", 5.0, positive=True),
        insecure=t.boolean("insecure", False),
        ca_file=ca_file,
        server_name=t.opt_string("server_name"),
        engine=cast(Any, engine),
        max_message_size=t.integer("max_message_size", 1 << 20, minimum=1),
        server=server,
    )
    t.finish()
    return config


def _check_url(t: Table, url: str) -> None:
    probe = url.replace("{seq}", "1")
    try:
        parts = urlsplit(probe)
        port = parts.port
    except ValueError as exc:
        raise t.error("url", f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise t.error("url", f'expected "builtin" or a ws:// or wss:// URL, got {url!r}')
    if not parts.hostname:
        raise t.error("url", f"no host in {url!r}")
    if port == 0:
        raise t.error("url", f"port must be 1-65535 in {url!r}")
    if parts.fragment:
        raise t.error("url", f"WebSocket URLs cannot have a #fragment: {url!r}")


def _server(t: Table) -> ServerConfig:
    close_code = t.integer("close_code", 1000)
    if not is_sendable(close_code):
        raise t.error(
            "close_code", f"{close_code} may not be sent in a Close frame (RFC 6455 §7.4)"
        )
    shutdown_code = t.integer("shutdown_code", 1001)
    if not is_sendable(shutdown_code):
        raise t.error(
            "shutdown_code", f"{shutdown_code} may not be sent in a Close frame (RFC 6455 §7.4)"
        )
    reject_share = t.number("reject_share", 0.0)
    if reject_share > 1:
        raise t.error("reject_share", f"must be a fraction between 0 and 1, got {reject_share}")
    reject_status = t.integer("reject_status", 503)
    if not 200 <= reject_status <= 599 or reject_status == 101:
        raise t.error(
            "reject_status", f"expected an HTTP status 200-599 other than 101, got {reject_status}"
        )
    config = ServerConfig(
        messages=cast(Any, t.choice("messages", ("echo", "sink"), "echo")),
        close_reply=cast(Any, t.choice("close_reply", ("normal", "never", "drop"), "normal")),
        close_reply_delay=t.delay("close_reply_delay"),
        close_after=t.opt_duration("close_after"),
        close_after_messages=t.opt_integer("close_after_messages", 1),
        close_code=close_code,
        close_reason=_reason(t, "close_reason"),
        close_action=cast(Any, t.choice("close_action", ("close", "fin", "rst"), "close")),
        close_timeout=t.duration("close_timeout", 30.0, positive=True),
        reject_share=reject_share,
        reject_status=reject_status,
        upgrade_delay=t.delay("upgrade_delay"),
        shutdown_after=t.opt_duration("shutdown_after"),
        shutdown_code=shutdown_code,
        shutdown_grace=t.duration("shutdown_grace", 10.0),
    )
    t.finish()
    return config


def _reason(t: Table, name: str) -> str:
    reason = t.string(name, "")
    if len(reason.encode("utf-8")) > _MAX_REASON_BYTES:
        raise t.error(
            name, f"must be at most {_MAX_REASON_BYTES} UTF-8 bytes, got {len(reason.encode())}"
        )
    return reason


def _load(t: Table) -> LoadConfig:
    model = t.choice("model", LOAD_MODELS, "arrival")
    rate = t.opt_number("rate")
    concurrency = t.opt_integer("concurrency", 1)
    duration = t.opt_duration("duration")
    connections = t.opt_integer("connections", 1)
    stages = _stages(t, model)
    config = LoadConfig(
        model=cast(Any, model),
        rate=rate,
        concurrency=concurrency,
        duration=duration,
        connections=connections,
        stages=stages,
        max_in_flight=t.integer("max_in_flight", 10000, minimum=1),
        open_deadline=t.duration("open_deadline", 30.0, positive=True),
        drain=t.duration("drain", 30.0),
        shutdown_grace=t.duration("shutdown_grace", 2.0),
    )
    t.finish()
    _check_load(t, config)
    return config


def _check_load(t: Table, load: LoadConfig) -> None:
    """Cross-key rules, checked after unknown keys so a typo is reported as a typo."""
    model, rate, concurrency, stages = load.model, load.rate, load.concurrency, load.stages
    duration, connections = load.duration, load.connections
    if model == "arrival":
        if rate is None and not stages:
            raise t.error("rate", "the arrival model needs rate (connections/s) or stages")
        if duration is None and connections is None and not stages:
            raise t.error(
                "duration", "the arrival model needs duration or connections (or stages) to end"
            )
        if concurrency is not None:
            raise t.error(
                "concurrency", "not used by the arrival model (did you mean max_in_flight?)"
            )
    elif model == "concurrency":
        if concurrency is None and not stages:
            raise t.error(
                "concurrency", "the concurrency model needs concurrency (slots) or stages"
            )
        if duration is None and connections is None and not stages:
            raise t.error(
                "duration", "the concurrency model needs duration or connections (or stages) to end"
            )
        if rate is not None:
            raise t.error("rate", "not used by the concurrency model (it is closed loop)")
    else:
        if concurrency is None:
            raise t.error(
                "concurrency",
                "the storm model needs concurrency (how many connections close at once)",
            )
        if stages:
            raise t.error("stages", "not used by the storm model")
        if connections is not None:
            raise t.error("connections", "not used by the storm model (its size is concurrency)")


def _stages(t: Table, model: str) -> tuple[Stage, ...]:
    raw = t.get("stages")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise t.error(
            "stages", 'expected a non-empty list of tables like { duration = "10s", rate = 500 }'
        )
    field = "rate" if model == "arrival" else "concurrency"
    stages = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise t.error(f"stages[{i}]", f"expected a table, got {show(item)}")
        st = Table(t.source, t.key(f"stages[{i}]"), item)
        duration = st.duration("duration", 0.0, positive=True)
        if not st.has("duration"):
            raise st.error("duration", "required")
        if not st.has(field):
            raise st.error(field, f"required for the {model} model")
        if field == "rate":
            rate = st.number("rate", 0.0)
            stages.append(Stage(duration=duration, rate=rate))
        else:
            stages.append(
                Stage(duration=duration, concurrency=st.integer("concurrency", 0, minimum=0))
            )
        st.finish()
    return tuple(stages)


def _session(t: Table, target: TargetConfig) -> SessionConfig:
    size = t.integer("message_size", 64, minimum=0)
    if size > target.max_message_size:
        raise t.error(
            "message_size", f"exceeds target.max_message_size ({target.max_message_size})"
        )
    config = SessionConfig(
        messages=t.integer("messages", 1, minimum=0),
        message_size=size,
        binary=t.boolean("binary", False),
        message_interval=t.duration("message_interval", 0.0),
        await_echo=t.boolean("await_echo", True),
        message_timeout=t.duration("message_timeout", 10.0, positive=True),
        hold=t.delay("hold"),
        ping_interval=t.duration("ping_interval", 0.0),
        reflect=t.boolean("reflect", False),
    )
    t.finish()
    return config


def _closes(root: Table, target: TargetConfig) -> tuple[CloseSpec, ...]:
    raw = root.get("close")
    if raw is None:
        return (CloseSpec(kind="clean", label="clean"),)
    if not isinstance(raw, list) or not raw:
        raise root.error("close", "expected one or more [[close]] tables")
    specs: list[CloseSpec] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise root.error(f"close[{i}]", f"expected a table, got {show(item)}")
        specs.append(_close(Table(root.source, f"close[{i}]", item), target))
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.label in seen:
            raise root.error(
                f"close[{i}]",
                f"label {spec.label!r} is also used by close[{seen[spec.label]}]; "
                "give each a distinct name",
            )
        seen[spec.label] = i
    return tuple(specs)


def _close(t: Table, target: TargetConfig) -> CloseSpec:
    if not t.has("kind"):
        raise t.error("kind", f"required: one of {either(CLOSE_KINDS)}")
    kind = t.choice("kind", CLOSE_KINDS, "clean")
    name = t.string("name", kind)
    if not _NAME_RE.match(name):
        raise t.error("name", f"must be 1-64 letters, digits, '.', '_' or '-', got {name!r}")
    weight = t.number("weight", 1.0, positive=True)
    if target.engine == "trio-websocket" and kind not in ("clean", "terminate"):
        raise t.error(
            "kind",
            f'{kind!r} is not possible with engine = "trio-websocket" (only clean, terminate)',
        )
    allowed = _CLOSE_KEYS[kind]
    for key in t.data:
        if key not in ("kind", "name", "weight") and key not in allowed:
            owners = [k for k, keys in _CLOSE_KEYS.items() if key in keys]
            why = (
                f"only for kind {either(owners)}" if owners else f"unknown key{hint(key, allowed)}"
            )
            raise t.error(key, f"{why} (kind {kind!r} takes: {', '.join(allowed) or 'no options'})")
    fields: dict[str, Any] = {}
    if "code" in allowed:
        code = t.integer("code", 1000)
        if not is_sendable(code):
            raise t.error(
                "code",
                f"{code} may not be sent in a Close frame (RFC 6455 §7.4: use 1000-1003, 1007-1014 "
                'or 3000-4999; reserved codes only via kind = "invalid_close")',
            )
        fields["code"] = code
        fields["reason"] = _reason(t, "reason")
    if "timeout" in allowed:
        fields["timeout"] = t.duration("timeout", _CLOSE_TIMEOUT_DEFAULT[kind])
    if "rst" in allowed:
        fields["rst"] = t.boolean("rst", False)
    if "on_timeout" in allowed:
        fields["on_timeout"] = t.choice("on_timeout", ("clean", "terminate"), "clean")
    if "send_interval" in allowed:
        fields["send_interval"] = t.duration("send_interval", 0.0)
    if "variant" in allowed:
        fields["variant"] = t.choice("variant", INVALID_VARIANTS, "code_1005")
    t.finish()
    return CloseSpec(kind=cast(Any, kind), label=name, weight=weight, **fields)


def apply_overrides(
    scenario: Scenario, *, duration: float | None = None, rate: float | None = None
) -> Scenario:
    """Apply ``wsload run --duration/--rate`` to a parsed scenario (``UsageError`` on misuse).

    ``--duration`` ends the run early or late; stages keep their shape (after the last stage its
    rate holds). ``--rate`` replaces the stages with one constant rate.
    """
    load = scenario.load
    if duration is not None:
        if duration <= 0:
            raise UsageError(f"--duration must be > 0, got {duration}")
        if load.model == "storm":
            raise UsageError("--duration does not apply to the storm model")
        load = replace(load, duration=duration)
    if rate is not None:
        if not rate > 0 or not math.isfinite(rate):
            raise UsageError(f"--rate must be > 0, got {rate}")
        if load.model == "concurrency":
            raise UsageError("--rate does not apply to the concurrency model")
        load = replace(load, rate=rate, stages=())
    return replace(scenario, load=load)


def parse_server_options(options: Mapping[str, Any]) -> ServerConfig:
    """``wsload serve`` flags → ``ServerConfig`` through the same rules as ``[target.server]``.

    ``options`` uses the TOML key names; ``None`` values mean "not given".
    """
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return _server(Table("wsload serve", "", given))
    except ScenarioError as exc:
        raise UsageError(f"--{exc.key.replace('_', '-')}: {exc.message}") from None
