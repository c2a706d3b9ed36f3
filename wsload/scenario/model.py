"""The scenario as frozen, typed objects. Built only by ``wsload.scenario.parse``.

Durations are float seconds; sizes are bytes. Every class here is immutable so that a scenario
can be shared by thousands of connection tasks (and sent to worker processes) without copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wsload.core.deflate import DeflateSettings
from wsload.core.kinds import KINDS, CloseKind
from wsload.core.percentiles import percentile_key
from wsload.core.script import Rule, Step
from wsload.core.templates import Template

__all__ = [
    "CLOSE_KINDS",
    "DATA_ORDERS",
    "EVENT_SIGNALS",
    "INVALID_VARIANTS",
    "JITTERS",
    "LOAD_MODELS",
    "METRICS",
    "RECONNECT_ON",
    "SEARCH_OVER",
    "STATS",
    "STEP_PREFIX",
    "Backoff",
    "CloseSpec",
    "DataConfig",
    "Delay",
    "LoadConfig",
    "ProcessConfig",
    "ProcessEvent",
    "ReconnectConfig",
    "Scenario",
    "SearchConfig",
    "ServerConfig",
    "SessionConfig",
    "Stage",
    "TargetConfig",
    "Threshold",
    "is_metric",
    "is_stat",
]

CLOSE_KINDS: tuple[str, ...] = tuple(kind.value for kind in KINDS)
"""The ``[[close]] kind`` spellings (:data:`wsload.core.kinds.KINDS`)."""

DataOrder = Literal["sequential", "random", "unique"]
DATA_ORDERS: tuple[str, ...] = DataOrder.__args__  # type: ignore[attr-defined]

LoadModel = Literal["arrival", "concurrency", "storm", "search"]
LOAD_MODELS: tuple[str, ...] = LoadModel.__args__  # type: ignore[attr-defined]

METRICS: tuple[str, ...] = (
    "connect",
    "handshake",
    "message_rtt",
    "ping_rtt",
    "close_handshake",
    "close_teardown",
    "close_total",
    "server_close_wait",
    "server_close_timeout",
    "session",
    "close_start_lag",
    "push_interval",
)
"""Latency metrics (µs), docs/design.md §5; thresholds and results use these names. Named
``expect`` steps add one ``step.<name>`` metric each (``is_metric``)."""

STEP_PREFIX = "step."
"""Metric name prefix of a named expect step's latency (``step.subscribe``)."""
_STEP_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def is_metric(name: str) -> bool:
    """A fixed metric of ``METRICS`` or a ``step.<name>`` metric (name: letters, digits, _-)."""
    if name in METRICS:
        return True
    step = name[len(STEP_PREFIX) :] if name.startswith(STEP_PREFIX) else ""
    return 0 < len(step) <= 64 and set(step) <= _STEP_NAME_CHARS


STATS: tuple[str, ...] = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p999", "max")
"""Per-metric statistics named in messages; any percentile is a stat too (``is_stat``)."""


def is_stat(name: str) -> bool:
    """A statistic of a latency metric: ``count``, ``min``, ``mean``, ``max`` or a percentile
    (``p95``, ``p99.9``, ``p999``: ``wsload.core.percentiles``)."""
    return name in ("count", "min", "mean", "max") or percentile_key(name) is not None


InvalidVariant = Literal[
    "code_1005",
    "code_1006",
    "code_1015",
    "code_out_of_range",
    "reason_too_long",
    "invalid_utf8",
    "one_byte",
]
INVALID_VARIANTS: tuple[str, ...] = InvalidVariant.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Delay:
    """A fixed (``min == max``) or uniformly random delay in seconds."""

    min: float = 0.0
    max: float = 0.0

    @property
    def is_zero(self) -> bool:
        return self.max <= 0.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Behaviour of the built-in server (``[target.server]`` and ``wsload serve`` flags).

    Attributes:
        messages: ``echo`` data messages back, or ``sink`` them.
        close_reply: how a client's Close is answered: ``normal``, ``never`` (a mute server that
            keeps TCP open until its ``close_timeout``) or ``drop`` (close TCP, no Close frame).
        close_reply_delay: wait this long before answering a client's Close.
        close_after: the server closes each connection this long after the upgrade (None: never).
        close_after_messages: ... or after this many received data messages (None: never).
        close_code / close_reason: the Close the server sends when it closes a client.
        close_action: ``close`` (a Close frame) or ``fin`` / ``rst`` (terminate without Close).
        close_timeout: how long the server waits for the client's answer to its Close before
            dropping TCP (Node ws ``closeTimeout``: 30 s).
        reject_share: fraction 0..1 of upgrades answered with ``reject_status``.
        reject_status: the HTTP status of rejected upgrades.
        upgrade_delay: wait before answering the upgrade request.
        shutdown_after: start a shutdown storm this long after the server started (None: never).
        shutdown_code: the code of the storm's Close frames (1001 Going Away).
        shutdown_grace: after the storm's Close, terminate whoever is still open (0 = hard).
        close_capacity: at most this many Close replies per second (None: unlimited); the
            excess queues, so close latency stays flat below it and grows without bound above
            it: a target with a known knee for capacity searches.
        compression: ``deflate``: accept a client's permessage-deflate offer (None: refuse
            every extension, as before).
        app: ``none``, or ``pubsub``: the application protocol of ``wsload.server.app``
            (replaces ``messages``: nothing is echoed).
        app_pushes: pubsub: pushes sent after each subscribe.
        app_push_interval: pubsub: time between two pushes (and from the ack to the first).
        app_bye_code: pubsub: the Close code the server answers a ``bye`` message with.
    """

    messages: Literal["echo", "sink"] = "echo"
    close_reply: Literal["normal", "never", "drop"] = "normal"
    close_reply_delay: Delay = Delay()
    close_after: float | None = None
    close_after_messages: int | None = None
    close_code: int = 1000
    close_reason: str = ""
    close_action: Literal["close", "fin", "rst"] = "close"
    close_timeout: float = 30.0
    reject_share: float = 0.0
    reject_status: int = 503
    upgrade_delay: Delay = Delay()
    shutdown_after: float | None = None
    shutdown_code: int = 1001
    shutdown_grace: float = 10.0
    close_capacity: float | None = None
    compression: Literal["deflate"] | None = None
    app: Literal["none", "pubsub"] = "none"
    app_pushes: int = 5
    app_push_interval: float = 0.1
    app_bye_code: int = 4000


EventSignal = Literal["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL"]
EVENT_SIGNALS: tuple[str, ...] = EventSignal.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ProcessEvent:
    """``[[target.process.events]]``: send ``signal`` to the target ``at`` seconds into the load.

    The shutdown audit (``events`` in summary.json) times every close from this moment.
    """

    at: float
    signal: EventSignal = "SIGTERM"


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """``[target.process]``: the server under test as a child process wsload owns.

    Attributes:
        command: argv (never a shell); ``{port}`` is replaced by ``port``.
        env: extra environment variables (added to wsload's own environment).
        port: the port the server listens on; 0: a free loopback port picked by wsload.
        ready_timeout: how long the port may take to accept connections.
        ready_line: a regular expression one line of the server's output must match before it
            counts as ready, besides the port accepting (None: the port alone); for a server
            whose port accepts before it can serve (a Node cluster's first worker).
        restart: start the command again when it exits during the load (a deploy).
        max_restarts: at most this many restarts.
        stop_signal / stop_timeout: how the process is stopped at the end (then SIGKILL).
        events: signals sent during the load, each audited.

    With ``url = "builtin"`` only ``events`` is allowed (``command`` is empty): the built-in
    server answers each event with its shutdown storm.
    """

    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    port: int = 0
    ready_timeout: float = 10.0
    ready_line: str | None = None
    restart: bool = False
    max_restarts: int = 10
    stop_signal: EventSignal = "SIGTERM"
    stop_timeout: float = 10.0
    events: tuple[ProcessEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """Where and how to connect.

    ``url`` is ``builtin`` (start the built-in server with ``server``) or a ``ws://``/``wss://``
    URL in which ``{seq}`` expands to the 1-based connection number.
    """

    url: str = "builtin"
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    source_addresses: tuple[str, ...] = ()
    connect_timeout: float = 5.0
    handshake_timeout: float = 5.0
    insecure: bool = False
    ca_file: str | None = None
    server_name: str | None = None
    engine: Literal["wsproto", "trio-websocket"] = "wsproto"
    max_message_size: int = 1 << 20
    server: ServerConfig = ServerConfig()
    compression: DeflateSettings | None = None
    """permessage-deflate offered (``[target] compression``); None: no extension offered."""
    process: ProcessConfig | None = None
    require_subprotocol: bool = False
    """A 101 without one of ``subprotocols`` selected is ``handshake_invalid``."""

    @property
    def is_builtin(self) -> bool:
        return self.url == "builtin"


@dataclass(frozen=True, slots=True)
class Stage:
    """One linear ramp: over ``duration`` move the rate (or concurrency) to the target."""

    duration: float
    rate: float | None = None
    concurrency: int | None = None


SearchOver = Literal["rate", "storm_size"]
SEARCH_OVER: tuple[str, ...] = SearchOver.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """``[load.search]``: how ``model = "search"`` steps the load to find the capacity.

    Attributes:
        over: ``rate`` (each step is an arrival run at that many connections/s) or
            ``storm_size`` (each step is a storm of that many connections).
        start: the first level tried.
        factor: each step up multiplies the level by this (> 1).
        max: the highest level tried (the loop's bound).
        step_duration: how long each ``rate`` step schedules arrivals.
        precision: bisect until (first fail - last pass) / last pass <= this fraction.
        cooldown: pause between steps, so one step's tail does not load the next.
        max_step_duration: a ``rate`` step whose judged percentiles would rest on fewer
            samples than ``wsload compare`` needs is lengthened up to this (0: never).
    """

    over: SearchOver
    start: float
    max: float
    factor: float = 2.0
    step_duration: float = 5.0
    precision: float = 0.05
    cooldown: float = 1.0
    max_step_duration: float = 0.0


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """How many connections, when.

    Attributes:
        model: ``arrival`` (open loop, conns/s), ``concurrency`` (closed loop, N slots) or
            ``storm`` (open N, hold, close all at once) or ``search`` (steps of ``arrival`` or
            ``storm`` up to the highest level that still meets every threshold).
        rate: arrival rate in connections/s (storm: opening rate, None = as fast as possible).
        concurrency: slots (concurrency) or storm size.
        duration: run length in seconds (None: until ``connections`` are attempted).
        connections: total connections to attempt (None: until ``duration``).
        stages: linear ramps replacing the constant rate/concurrency.
        max_in_flight: open-loop cap; a due connection over it is dropped and counted.
        open_deadline: storm: stop waiting for all N to open after this long.
        drain: after the end, in-flight connections get this long to finish their close.
        shutdown_grace: on SIGINT/SIGTERM, clean-close then terminate after this long.
        search: the ``[load.search]`` table (only with ``model = "search"``).
    """

    model: LoadModel = "arrival"
    rate: float | None = None
    concurrency: int | None = None
    duration: float | None = None
    connections: int | None = None
    stages: tuple[Stage, ...] = ()
    max_in_flight: int = 10000
    open_deadline: float = 30.0
    drain: float = 30.0
    shutdown_grace: float = 2.0
    search: SearchConfig | None = None


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What a connection does between the upgrade and its close behaviour.

    ``steps`` is the ``[[session.steps]]`` script; empty means echo mode (``messages``,
    ``message_size``, ``await_echo``, ``message_interval``, ``binary`` are its settings).
    ``message_timeout``, ``hold``, ``ping_interval``, ``reflect`` and the ``[[session.on]]``
    reply rules (``on``) apply to both.
    """

    messages: int = 1
    message_size: int = 64
    binary: bool = False
    message_interval: float = 0.0
    await_echo: bool = True
    message_timeout: float = 10.0
    hold: Delay = Delay()
    ping_interval: float = 0.0
    reflect: bool = False
    steps: tuple[Step, ...] = ()
    on: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class CloseSpec:
    """One entry of the close mix (``[[close]]``).

    Attributes:
        kind: the close behaviour (docs/design.md §3).
        label: metrics label: the entry's ``name``, else its ``kind``.
        weight: share of connections (weights need not sum to 100).
        code / reason: the Close we send (clean, close_no_wait, await_server_close's fallback).
        timeout: bound on the behaviour's waiting (clean: Close reply + EOF; await/ignore: the
            wait for the server's Close and for its TCP drop).
        rst: terminate with RST (SO_LINGER 0) instead of FIN.
        on_timeout: await_server_close: what to do when the server never closes.
        send_interval: await_server_close: keep sending a message this often while waiting.
        send_payload: what ``send_interval`` sends (a text template; None: the session's
            filler payload).
        variant: invalid_close: which malformed Close to send.
    """

    kind: CloseKind
    label: str
    weight: float = 1.0
    code: int = 1000
    reason: str = ""
    timeout: float = 10.0
    rst: bool = False
    on_timeout: Literal["clean", "terminate"] = "clean"
    send_interval: float = 0.0
    send_payload: Template | None = None
    variant: InvalidVariant = "code_1005"

    def __post_init__(self) -> None:
        # a spec built from the TOML spelling (tests, overrides) gets the enum member
        if not isinstance(self.kind, CloseKind):
            object.__setattr__(self, "kind", CloseKind(self.kind))


@dataclass(frozen=True, slots=True)
class Threshold:
    """``"close_handshake.p99" = "< 50ms"`` parsed.

    ``value`` is in the metric's unit: µs for latencies, a fraction 0..1 for shares, a count for
    counters, 0/1 for booleans. ``text`` keeps the user's spelling for reports. ``abort``: the
    run stops as soon as the threshold fails on the live figures, once ``after_s`` seconds of
    load have passed (``{ condition = "< 50ms", abort = true, after = "10s" }``).
    """

    expr: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float
    unit: Literal["us", "share", "count", "bool"]
    text: str
    abort: bool = False
    after_s: float = 0.0


Jitter = Literal["full", "equal", "none"]
JITTERS: tuple[str, ...] = Jitter.__args__  # type: ignore[attr-defined]

RECONNECT_ON: tuple[str, ...] = (
    "server_closed",
    "abnormal",
    "refused",
    "reset",
    "handshake_rejected",
)
"""The outcomes that make a logical client reconnect by default (``[reconnect] on``)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: attempt n waits ``min(max, initial * multiplier**(n-1))``, jittered.

    ``full`` jitter draws uniformly from [0, that]; ``equal`` from [that/2, that]; ``none``
    waits exactly that (the AWS Architecture Blog's "Exponential Backoff And Jitter").
    """

    initial: float = 0.1
    max: float = 10.0
    multiplier: float = 2.0
    jitter: Jitter = "full"


@dataclass(frozen=True, slots=True)
class ReconnectConfig:
    """``[reconnect]``: a logical client (one ``seq``) connects again after these outcomes.

    Attributes:
        on: outcome names that trigger a reconnect.
        backoff: the wait before each new attempt.
        max_attempts: connections per logical client, the first included; then it gives up.
        hold: a reconnected connection's wait for the server's Close (``await_server_close``,
            ``ignore_server_close``) is bounded by this instead of the close's ``timeout``,
            which then only bounds the first connection's wait (None: ``timeout`` for all).
    """

    on: tuple[str, ...] = RECONNECT_ON
    backoff: Backoff = Backoff()
    max_attempts: int = 20
    hold: float | None = None


@dataclass(frozen=True, slots=True)
class DataConfig:
    """``[data]``: one row of a file per logical client (``{data:COLUMN}`` in templates).

    The rows are read when the scenario loads, so every worker process and cluster segment
    gets the same rows, and which row a client takes depends only on its ``seq`` (and the
    seed): ``unique`` needs no coordination to hand each row out once
    (``wsload.plan.data``).

    Attributes:
        file: the file as written (``users.csv``, ``.jsonl``); relative to the scenario.
        order: ``sequential`` (row ``(seq - 1) % rows``), ``random`` (a seeded draw per
            client) or ``unique`` (row ``seq - 1``; the load ends when the rows run out).
        secret_columns: columns whose values are secrets (redacted from every output).
        columns: the header (CSV) or the first object's keys (JSONL), in order.
        rows: the values, one tuple per row, in ``columns`` order.
    """

    file: str
    order: DataOrder = "sequential"
    secret_columns: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole, validated scenario.

    ``secrets`` holds the values ``{env:NAME}`` took from the environment and those of the
    ``[data]`` file's ``secret_columns``: every output redacts them (``wsload.report.redact``);
    they are never written themselves.
    """

    name: str
    source: str
    seed: int | None = None
    description: str = ""
    target: TargetConfig = TargetConfig()
    load: LoadConfig = LoadConfig()
    session: SessionConfig = SessionConfig()
    close: tuple[CloseSpec, ...] = (CloseSpec(kind=CloseKind.CLEAN, label="clean"),)
    thresholds: tuple[Threshold, ...] = field(default_factory=tuple)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    reconnect: ReconnectConfig | None = None
    data: DataConfig | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The ``[data]`` file's columns (``()`` without one): what ``{data:COLUMN}`` names."""
        return () if self.data is None else self.data.columns
