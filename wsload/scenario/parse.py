"""Scenario TOML → frozen ``Scenario``. The only place scenario input is interpreted.

Every mistake raises ``ScenarioError`` naming the file, the key path and what was expected
(``scenario.toml: load.rate: must be > 0, got -5``); unknown keys get a "did you mean" hint.
Nothing here executes code from the file: TOML is data only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from wsload.core.codes import is_sendable
from wsload.core.kinds import KINDS, CloseKind
from wsload.core.script import step_metrics
from wsload.errors import ScenarioError, UsageError
from wsload.scenario._table import Table, either, hint, show
from wsload.scenario.compression import parse_compression, parse_server_compression
from wsload.scenario.deploy import DEPLOY_TABLE_KEYS, parse_process, parse_reconnect
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
from wsload.scenario.overrides import apply_settings, blame_settings, parse_setting
from wsload.scenario.search import SEARCH_KEYS, check_search_load, parse_search
from wsload.scenario.steps import Resolve, env_resolver, session_steps
from wsload.scenario.thresholds import parse_thresholds

__all__ = [
    "CLOSE_KIND_KEYS",
    "TABLE_KEYS",
    "load_scenario",
    "parse_scenario",
    "parse_server_options",
]


_MAX_REASON_BYTES = 123
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Close labels appear in dotted threshold expressions and histogram-log tags: no '.' there.
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
}
_HEADER_KEYS = {"origin": "origin", "sec-websocket-protocol": "subprotocols"}

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "": ("name", "seed", "description", "target", "load", "session", "close", "thresholds",
         "reconnect"),
    "target": (
        "url", "headers", "subprotocols", "origin", "source_addresses", "connect_timeout",
        "handshake_timeout", "insecure", "ca_file", "server_name", "engine", "max_message_size",
        "server", "compression", "process",
    ),
    "target.server": (
        "messages", "close_reply", "close_reply_delay", "close_after", "close_after_messages",
        "close_code", "close_reason", "close_action", "close_timeout", "reject_share",
        "reject_status", "upgrade_delay", "shutdown_after", "shutdown_code", "shutdown_grace",
        "close_capacity", "compression", "app", "app_pushes", "app_push_interval",
        "app_bye_code",
    ),
    "load": (
        "model", "rate", "concurrency", "duration", "connections", "stages", "max_in_flight",
        "open_deadline", "drain", "shutdown_grace", "search",
    ),
    "load.stages": ("duration", "rate", "concurrency"),
    "load.search": SEARCH_KEYS,
    "session": (
        "messages", "message_size", "binary", "message_interval", "await_echo", "message_timeout",
        "hold", "ping_interval", "reflect", "steps",
    ),
    "close": (
        "kind", "name", "weight", "code", "reason", "timeout", "rst", "on_timeout",
        "send_interval", "variant",
    ),
    "delay": ("min", "max"),
    **DEPLOY_TABLE_KEYS,
}  # fmt: skip
"""Every key each table accepts (``thresholds`` and ``target.headers`` take free-form keys;
``delay`` is the ``{ min, max }`` form of a random delay). docs/scenarios.md documents each one
and a test keeps the two in sync."""

CLOSE_KIND_KEYS: dict[str, tuple[str, ...]] = {
    kind.value: info.keys for kind, info in KINDS.items()
}
"""Keys each close kind accepts besides ``kind``, ``name`` and ``weight``."""


def load_scenario(
    path: str | Path, sets: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> Scenario:
    """Read and parse a scenario file, with ``--set KEY.PATH=VALUE`` overrides (``sets``;
    ``environ``: for ``{env:NAME}``, default ``os.environ``).

    Raises:
        ScenarioError: unreadable file, invalid TOML, a bad ``--set`` or any invalid key.
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
    return parse_scenario(
        text,
        source=str(path),
        default_name=path.stem,
        base_dir=path.parent,
        sets=sets,
        environ=environ,
    )


def parse_scenario(
    text: str,
    *,
    source: str = "scenario.toml",
    default_name: str = "scenario",
    base_dir: Path | None = None,
    sets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Scenario:
    """Parse scenario TOML text into a frozen ``Scenario``. docs/scenarios.md has every key.

    Args:
        text: the TOML text.
        source: the file name that messages start with.
        default_name: ``name`` when the file sets none (``load_scenario``: the file's stem).
        base_dir: where a relative ``target.ca_file`` or ``send_file`` is looked up (None: the
            working directory).
        sets: ``KEY.PATH=VALUE`` overrides (``--set``), written into the document first.
        environ: where ``{env:NAME}`` reads variables (None: ``os.environ``); the values it
            takes become ``Scenario.secrets``.

    Raises:
        ScenarioError: invalid TOML or any invalid key, naming ``source``, the key path and
            what was expected (and ``--set`` when the value came from one).
    """
    settings = [parse_setting(source, text) for text in sets]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses on nested arrays/inline tables
        raise ScenarioError(source, "", "invalid TOML: values nested too deeply") from None
    apply_settings(source, data, settings)
    try:
        return _scenario(data, source, default_name, base_dir, environ)
    except ScenarioError as exc:
        raise blame_settings(exc, settings) from None


def _scenario(
    data: dict[str, Any],
    source: str,
    default_name: str,
    base_dir: Path | None,
    environ: Mapping[str, str] | None,
) -> Scenario:
    root = Table(source, "", data)
    root.allow(TABLE_KEYS[""])
    name = root.string("name", default_name)
    if not root.has("name") and not _NAME_RE.match(name):
        raise root.error(
            "name",
            f'the file name {name!r} is not a valid scenario name; set name = "..." '
            "(1-64 letters, digits, '.', '_' or '-'; it names the results directory)",
        )
    if not _NAME_RE.match(name):
        raise root.error(
            "name",
            f"must be 1-64 letters, digits, '.', '_' or '-' (it names the results directory), "
            f"got {name!r}",
        )
    seed = root.opt_integer("seed", 0)
    description = root.string("description", "")
    secrets: list[str] = []
    resolve = env_resolver(os.environ if environ is None else environ, secrets)
    target = _target(root.table("target"), base_dir, resolve)
    load = _load(root.table("load"))
    session = _session(root.table("session"), target, base_dir, resolve)
    closes = _closes(root, target)
    thresholds = parse_thresholds(
        root.table("thresholds"),
        tuple(c.label for c in closes),
        step_metrics(session.steps),
    )
    if load.model == "search" and not thresholds:
        raise root.error(
            "thresholds",
            'required by model = "search": a level passes when every threshold holds',
        )
    reconnect = parse_reconnect(root.table("reconnect")) if root.has("reconnect") else None
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
        secrets=tuple(dict.fromkeys(secrets)),
        reconnect=reconnect,
    )


def _target(t: Table, base_dir: Path | None, resolve: Resolve) -> TargetConfig:
    t.allow(TABLE_KEYS["target"])
    written = t.string("url", "builtin")
    url = resolve(t, "url", written)
    process = parse_process(t.table("process"), url) if t.has("process") else None
    if url != "builtin":
        _check_url(t, url, written, managed=process is not None)
    if t.has("server") and url != "builtin":
        raise t.error(
            "server", 'only allowed with url = "builtin" (it configures the built-in server)'
        )
    headers_table = t.table("headers")
    headers: list[tuple[str, str]] = []
    for hname, hvalue in headers_table.data.items():
        headers_table.known.append(hname)
        if not _TOKEN_RE.match(hname):
            raise headers_table.error(hname, "not a valid HTTP header name")
        if hname.lower() in _HEADER_KEYS:
            raise headers_table.error(hname, f"use target.{_HEADER_KEYS[hname.lower()]} instead")
        if hname.lower() in _RESERVED_HEADERS:
            raise headers_table.error(hname, "set by wsload itself (part of the upgrade)")
        if not isinstance(hvalue, str):
            raise headers_table.error(hname, f"expected a single-line string, got {show(hvalue)}")
        if not _sendable(hvalue):
            # the value is not echoed: header values are often secrets (Authorization, Cookie)
            raise headers_table.error(
                hname, "expected a single-line ISO-8859-1 string (the value is not shown)"
            )
        hvalue = resolve(headers_table, hname, hvalue)
        if not _sendable(hvalue):
            raise headers_table.error(
                hname, "its {env:...} value is not single-line ISO-8859-1 (not shown)"
            )
        headers.append((hname, hvalue))
    subprotocols = t.string_list("subprotocols")
    for i, proto in enumerate(subprotocols):
        if not _TOKEN_RE.match(proto):
            raise t.error(f"subprotocols[{i}]", f"not a valid token: {proto!r}")
    origin = t.opt_string("origin")
    if origin is not None:
        written_origin, origin = origin, resolve(t, "origin", origin)
        if not _sendable(origin):
            raise t.error("origin", f"expected single-line ISO-8859-1 text, got {written_origin!r}")
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
        # Relative to the scenario file; stored absolute so that the resolved copy in a results
        # directory still points at the same file.
        ca_path = Path(ca_file) if base_dir is None else base_dir / ca_file
        if not ca_path.is_file():
            raise t.error("ca_file", f"no such file: {str(ca_path)!r}")
        ca_file = str(ca_path.resolve())
    engine = t.choice("engine", ("wsproto", "trio-websocket"), "wsproto")
    compression = parse_compression(t)
    if compression is not None and engine != "wsproto":
        raise t.error("compression", 'needs engine = "wsproto" (the reference engine offers none)')
    server = _server(t.table("server"))
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
        compression=compression,
        process=process,
    )
    t.finish()
    return config


def _sendable(text: str) -> bool:
    """Text that can go into the upgrade request as it is: ISO-8859-1, one line, no NUL."""
    if any(c in text for c in "\r\n\0"):
        return False
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _check_url(t: Table, url: str, written: str, *, managed: bool) -> None:
    """Check the URL (``{env:...}`` resolved); messages show it as ``written`` (no secrets).

    ``{port}`` is only filled in for a ``managed`` server (``[target.process]``)."""
    if "{port}" in url and not managed:
        raise t.error("url", "{port} is only filled in for a managed server ([target.process])")
    probe = url.replace("{seq}", "1").replace("{port}", "1")
    url = written
    if not _sendable(probe):
        raise t.error(
            "url", f"expected ISO-8859-1 text without line breaks (percent-encode), got {url!r}"
        )
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
    t.allow(TABLE_KEYS["target.server"])
    close_code = _code(t, "close_code", 1000, "")
    shutdown_code = _code(t, "shutdown_code", 1001, "")
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
        close_capacity=t.opt_number("close_capacity"),
        compression=parse_server_compression(t),
        app=cast(Any, t.choice("app", ("none", "pubsub"), "none")),
        app_pushes=t.integer("app_pushes", 5, minimum=0),
        app_push_interval=t.duration("app_push_interval", 0.1),
        app_bye_code=_code(t, "app_bye_code", 4000, ""),
    )
    t.finish()
    return config


def _code(t: Table, name: str, default: int, more: str) -> int:
    """A close code an endpoint may put on the wire (``is_sendable``)."""
    code = t.integer(name, default)
    if not is_sendable(code):
        raise t.error(
            name,
            f"{code} may not be sent in a Close frame (RFC 6455 §7.4: use 1000-1003, 1007-1014 "
            f"or 3000-4999{more})",
        )
    return code


def _reason(t: Table, name: str) -> str:
    reason = t.string(name, "")
    if len(reason.encode("utf-8")) > _MAX_REASON_BYTES:
        raise t.error(
            name, f"must be at most {_MAX_REASON_BYTES} UTF-8 bytes, got {len(reason.encode())}"
        )
    return reason


def _load(t: Table) -> LoadConfig:
    t.allow(TABLE_KEYS["load"])
    model = t.choice("model", LOAD_MODELS, "arrival")
    if t.has("search") and model != "search":
        raise t.error("search", f'only used by model = "search" (this is model = "{model}")')
    search = parse_search(t.table("search")) if t.has("search") else None
    if model == "search":
        check_search_load(t, search)
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
        search=search,
    )
    t.finish()
    _check_load(t, config)
    return config


def _check_load(t: Table, load: LoadConfig) -> None:
    """Cross-key rules, checked after unknown keys so a typo is reported as a typo."""
    model, rate, concurrency, stages = load.model, load.rate, load.concurrency, load.stages
    duration, connections = load.duration, load.connections
    if model == "search":
        return  # checked by check_search_load before the other keys were read
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
        if duration is not None:
            raise t.error(
                "duration",
                "not used by the storm model (it ends when its concurrency connections have "
                "closed; open_deadline bounds the opening, drain the closing)",
            )


def _stages(t: Table, model: str) -> tuple[Stage, ...]:
    raw = t.get("stages")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise t.error(
            "stages", 'expected a non-empty list of tables like { duration = "10s", rate = 500 }'
        )
    if model == "storm":
        raise t.error("stages", "not used by the storm model (it opens concurrency connections)")
    field = "rate" if model == "arrival" else "concurrency"
    other = "concurrency" if field == "rate" else "rate"
    stages = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise t.error(f"stages[{i}]", f"expected a table, got {show(item)}")
        st = Table(t.source, t.key(f"stages[{i}]"), item)
        if st.has(other):
            raise st.error(other, f"not used by the {model} model (its stages take {field})")
        st.allow(("duration", field))
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


def _session(
    t: Table, target: TargetConfig, base_dir: Path | None, resolve: Resolve
) -> SessionConfig:
    t.allow(TABLE_KEYS["session"])
    size = t.integer("message_size", 64, minimum=0)
    if size > target.max_message_size:
        raise t.error(
            "message_size", f"{size} exceeds target.max_message_size ({target.max_message_size})"
        )
    timeout = t.duration("message_timeout", 10.0, positive=True)
    config = SessionConfig(
        messages=t.integer("messages", 1, minimum=0),
        message_size=size,
        binary=t.boolean("binary", False),
        message_interval=t.duration("message_interval", 0.0),
        await_echo=t.boolean("await_echo", True),
        message_timeout=timeout,
        hold=t.delay("hold"),
        ping_interval=t.duration("ping_interval", 0.0),
        reflect=t.boolean("reflect", False),
        steps=session_steps(t, target.engine, timeout, base_dir, resolve),
    )
    t.finish()
    return config


def _closes(root: Table, target: TargetConfig) -> tuple[CloseSpec, ...]:
    raw = root.get("close")
    if raw is None:
        return (CloseSpec(kind=CloseKind.CLEAN, label="clean"),)
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
        typos = [k for k in t.data if k not in TABLE_KEYS["close"] and hint(k, ["kind"])]
        typo = f" ({typos[0]!r} looks like a misspelt 'kind')" if typos else ""
        raise t.error("kind", f"required: one of {either(CLOSE_KINDS)}{typo}")
    kind = CloseKind(t.choice("kind", CLOSE_KINDS, "clean"))
    info = KINDS[kind]
    name = t.string("name", kind.value)
    if not _LABEL_RE.match(name):
        raise t.error(
            "name",
            "must be 1-64 letters, digits, '_' or '-' (it is the behaviour's label in results "
            f"and in thresholds like behaviours.<name>.close_total.p99), got {name!r}",
        )
    weight = t.number("weight", 1.0, positive=True)
    if target.engine == "trio-websocket" and not info.reference:
        supported = ", ".join(k.value for k, i in KINDS.items() if i.reference)
        raise t.error(
            "kind",
            f'{kind.value!r} is not possible with engine = "trio-websocket" (only {supported})',
        )
    allowed = info.keys
    for key in t.data:
        if key not in ("kind", "name", "weight") and key not in allowed:
            owners = [k for k, keys in CLOSE_KIND_KEYS.items() if key in keys]
            why = (
                f"only for kind {either(owners)}"
                if owners
                else f"unknown key{hint(key, TABLE_KEYS['close'])}"
            )
            takes = ", ".join(("kind", "name", "weight", *allowed))
            raise t.error(key, f"{why} (kind {kind.value!r} takes: {takes})")
    fields: dict[str, Any] = {}
    if "code" in allowed:
        fields["code"] = _code(
            t, "code", 1000, '; reserved and out-of-range codes only via kind = "invalid_close"'
        )
        fields["reason"] = _reason(t, "reason")
    if "timeout" in allowed:
        assert info.timeout is not None  # every kind with a timeout key has its default
        fields["timeout"] = t.duration("timeout", info.timeout)
    if "rst" in allowed:
        fields["rst"] = t.boolean("rst", False)
    if "on_timeout" in allowed:
        fields["on_timeout"] = t.choice("on_timeout", ("clean", "terminate"), "clean")
    if "send_interval" in allowed:
        fields["send_interval"] = t.duration("send_interval", 0.0)
    if "variant" in allowed:
        fields["variant"] = t.choice("variant", INVALID_VARIANTS, "code_1005")
    t.finish()
    return CloseSpec(kind=kind, label=name, weight=weight, **fields)


def parse_server_options(options: Mapping[str, Any]) -> ServerConfig:
    """``wsload serve`` flags → ``ServerConfig`` through the same rules as ``[target.server]``.

    ``options`` uses the TOML key names; ``None`` values mean "not given".
    """
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return _server(Table("wsload serve", "", given))
    except ScenarioError as exc:
        # "close_reply_delay.max" -> "--close-reply-delay: max: ..."
        flag, _, sub = exc.key.partition(".")
        where = f"--{flag.replace('_', '-')}: " + (f"{sub}: " if sub else "")
        raise UsageError(where + exc.message) from None
