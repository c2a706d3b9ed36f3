"""What the driver needs per connection (``ConnectionPlan``) and per run (``DriverContext``).

Everything that is the same for every connection of a run is computed once here: the parsed
URL, the upgrade request template, the data message payload, resolved addresses. The driver's
per-connection work is then only what must differ (the key, the mask, the socket).
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import trio

from wsload.core.closing import CloseTracker
from wsload.core.handshake import RequestTemplate, host_header
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.core.script import Step, echo_script
from wsload.engine.link import Alarm, Link
from wsload.engine.poller import Poller
from wsload.engine.wireclock import WireClock, reader_of
from wsload.scenario.model import CloseSpec, SessionConfig, TargetConfig

__all__ = ["ConnectionPlan", "DriverContext", "Endpoint", "Opener", "make_ssl_context"]

_SEQ = "{seq}"

_TRACKED = tuple(
    f.name for f in fields(CloseTracker) if f.name in ConnectionRecord.__dataclass_fields__
)
"""The close tracker's stamps, codes and sides: named as the record's fields, copied as they are."""


@dataclass(frozen=True, slots=True, init=False)
class ConnectionPlan:
    """One connection to make.

    Attributes:
        seq: 1-based connection number; expands ``{seq}`` in the URL.
        scheduled: the ``trio.current_time()`` at which the connection was meant to start.
        close: the close behaviour it gets.
        source_address: local address to ``bind()`` before connecting (None: the OS picks).
        attempt: the logical client's attempt (``[reconnect]``: 1, 2, ...; else 1).
        row: the logical client's ``[data]`` row (``{data:COLUMN}``; every attempt keeps it).
    """

    seq: int
    scheduled: float
    close: CloseSpec
    source_address: str | None = None
    attempt: int = 1
    row: tuple[str, ...] = ()

    def __init__(
        self,
        seq: int,
        scheduled: float,
        close: CloseSpec,
        source_address: str | None = None,
        attempt: int = 1,
        row: tuple[str, ...] = (),
    ) -> None:
        # written out: see wsload.core.record.ConnectionRecord.__init__
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "scheduled", scheduled)
        object.__setattr__(self, "close", close)
        object.__setattr__(self, "source_address", source_address)
        object.__setattr__(self, "attempt", attempt)
        object.__setattr__(self, "row", row)

    def record(
        self,
        outcome: Outcome,
        detail: str = "",
        *,
        tracker: CloseTracker | None = None,
        **measured: Any,
    ) -> ConnectionRecord:
        """The connection's record, built here and nowhere else: who it was (this plan), how
        it ended, the close ``tracker``'s stamps and codes when it got that far, and the rest
        of what was ``measured`` (``ConnectionRecord`` field names)."""
        tracked = {name: getattr(tracker, name) for name in _TRACKED} if tracker is not None else {}
        return ConnectionRecord(
            seq=self.seq,
            label=self.close.label,
            kind=self.close.kind.value,
            outcome=outcome,
            scheduled=self.scheduled,
            detail=detail,
            attempt=self.attempt,
            **tracked,
            **measured,
        )

    def upgraded_record(
        self,
        outcome: Outcome,
        detail: str,
        link: Link,
        connect_start: float,
        connect_end: float | None,
        request_sent: float | None,
        upgraded: float | None,
        extensions: tuple[str, ...],
    ) -> ConnectionRecord:
        """:meth:`record` of a connection that got upgraded (the hot path: once per cycle),
        with everything the ``link`` measured: the same record, built with one positional
        call in the record's field order instead of a dict of ≈ 30 keyword arguments
        (tests/engine/test_engine_record.py checks both give the same record)."""
        t, proto, close = link.tracker, link.proto, self.close
        return ConnectionRecord(
            self.seq,
            close.label,
            str(close.kind),  # the StrEnum's value, without enum's interpreted descriptor
            outcome,
            self.scheduled,
            connect_start,
            connect_end,
            request_sent,
            upgraded,
            t.close_initiated,
            t.close_sent,
            t.close_received,
            t.eof,
            t.socket_closed,
            tuple(link.message_rtts),
            tuple(proto.ping_rtts),
            tuple(link.step_latencies),
            tuple(proto.push_intervals),
            proto.messages_sent,
            proto.messages_received,
            proto.bytes_sent,
            proto.bytes_received,
            proto.messages_unmatched,
            t.code_sent,
            t.reason_sent,
            t.code_received,
            t.reason_received,
            None,  # http_status: upgraded, so 101
            t.close_initiator,
            t.tcp_closed_first,
            t.reset,
            extensions,
            detail,
            self.attempt,
            tuple(link.censored),
            proto.messages_auto_replied,
            proto.inbox_overflow,
            proto.subprotocol,
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed ``ws://``/``wss://`` URL with its request template.

    Attributes:
        secure: ``wss://``.
        host: host name or address (IPv6 without brackets).
        port: TCP port (default 80/443).
        resource: path and query sent in the request line.
        server_name: TLS SNI and certificate name.
        template: the upgrade request around the key.
    """

    secure: bool
    host: str
    port: int
    resource: str
    server_name: str
    template: RequestTemplate

    @classmethod
    def parse(cls, url: str, target: TargetConfig, columns: tuple[str, ...] = ()) -> Endpoint:
        """Parse ``url`` (``{seq}`` and ``{data:COLUMN}`` may stay in the path/query; they are
        expanded per request; ``columns``: the ``[data]`` file's).

        Raises:
            ValueError: not a ws:// or wss:// URL with a host, or an unsendable header.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"expected a ws:// or wss:// URL, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        template = RequestTemplate.build(
            host=host_header(parts.hostname, port, secure),
            resource=resource,
            origin=target.origin,
            subprotocols=target.subprotocols,
            headers=target.headers,
            extensions=None if target.compression is None else target.compression.offer(),
            columns=columns,
        )
        return cls(
            secure=secure,
            host=parts.hostname,
            port=port,
            resource=resource,
            server_name=target.server_name or parts.hostname,
            template=template,
        )


Opener = Callable[["ConnectionPlan", Endpoint], Awaitable[trio.abc.Stream]]
"""Opens the byte stream of one connection instead of TCP (+TLS): the seam tests use to run
the driver over ``trio.testing.memory_stream_pair``. OSError from it maps like a TCP error."""


def make_ssl_context(target: TargetConfig) -> ssl.SSLContext:
    """The client TLS context of a run: verification on (system CAs or ``ca_file``).

    ``insecure`` turns off certificate and host name checks, for self-signed test targets.
    ALPN offers ``http/1.1`` so that ALPN-routing proxies pass the upgrade through.
    """
    context = ssl.create_default_context(cafile=target.ca_file)
    if target.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass(slots=True)
class DriverContext:
    """Built once per run, shared by all connections (see :meth:`create`).

    Attributes:
        target / session: the scenario's sections.
        url: the ``ws://``/``wss://`` URL; ``{seq}`` expands to the connection number.
        ssl_context: for ``wss://`` (made from ``target`` when None).
        release: storm model: after the session a connection holds until this is set
            (instead of ``session.hold``).
        stop: graceful stop: when set, sessions and holds are cut short and every connection
            runs its close behaviour now (a wait for the server's Close counts as a hold).
        rng: draws the hold duration between ``hold.min`` and ``hold.max``.
        ready_count: connections currently parked waiting for ``release``.
        opener: replaces TCP/TLS connect (tests: memory streams).
        endpoint: the parsed URL (None when the host contains ``{seq}``: parsed per connection).
        payload: the data message body (``message_size`` bytes; ASCII for text messages).
        script: the session's steps: ``session.steps``, or echo mode's built-in script.
        alarm: wakes parked connections when ``stop``/``release`` is set.
        addresses: resolved ``(host, port, family wanted) -> (family, sockaddr)`` cache.
        upgraded: upgrade instants by ``seq``, set by the driver; the runner takes each out
            when the connection ends, so the record it writes for a connection cancelled
            mid-run (``interrupted``) still counts it as opened.
        columns: the ``[data]`` file's columns (``{data:COLUMN}`` in the URL and headers).
        now: reads the run's clock, which is what ``trio.current_time()`` returns, without its
            three interpreted calls (≈ 14 reads per cycle): Trio's own clock read by compiled
            code (``wireclock.SystemNow``), else the clock's bound ``current_time``; bound by
            :meth:`bind_clock` in each connection's task.
        wire: the kernel receive stamps' mapping onto that clock, and the connections and
            notice lag it saw (``wsload.engine.wireclock``); new with each Trio run's clock.
        parking: plain TCP reads wait in the run's :attr:`poller` (False: each in Trio's
            ``wait_readable`` within a cancel scope, as TLS reads do; the records are the
            same: tests/engine/test_engine_poller.py).
        poller: where the run's plain TCP reads park (``wsload.engine.poller``); new with each
            Trio run's clock, None without ``parking``.
    """

    target: TargetConfig
    session: SessionConfig
    url: str
    ssl_context: ssl.SSLContext | None = None
    release: trio.Event | None = None
    stop: trio.Event | None = None
    rng: random.Random = field(default_factory=random.Random)
    ready_count: int = 0
    opener: Opener | None = None
    columns: tuple[str, ...] = ()
    parking: bool = True
    endpoint: Endpoint | None = field(default=None, init=False)
    payload: bytes = field(default=b"", init=False)
    script: tuple[Step, ...] = field(default=(), init=False)
    alarm: Alarm = field(default_factory=Alarm, init=False)
    addresses: dict[tuple[str, int, int], tuple[int, object]] = field(
        default_factory=dict, init=False
    )
    upgraded: dict[int, float] = field(default_factory=dict, init=False)
    now: Callable[[], float] = field(default=trio.current_time, init=False)
    wire: WireClock = field(default_factory=WireClock, init=False)
    poller: Poller | None = field(default=None, init=False)
    _clock: trio.abc.Clock | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        host_part = self.url.split("//", 1)[-1].split("/", 1)[0]
        columns = self.columns
        self.endpoint = (
            None if _SEQ in host_part else Endpoint.parse(self.url, self.target, columns)
        )
        if self.endpoint is None:  # fail fast on bad URLs
            Endpoint.parse(self.url.replace(_SEQ, "1"), self.target, columns)
        self.payload = _payload(self.session)
        s = self.session
        self.script = s.steps or echo_script(
            self.payload,
            binary=s.binary,
            messages=s.messages,
            interval=s.message_interval,
            await_echo=s.await_echo,
            timeout=s.message_timeout,
        )
        if self.ssl_context is None and self.url.startswith("wss:"):
            self.ssl_context = make_ssl_context(self.target)

    @classmethod
    def create(
        cls,
        target: TargetConfig,
        session: SessionConfig,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        seed: int | None = None,
        release: trio.Event | None = None,
        stop: trio.Event | None = None,
        opener: Opener | None = None,
        columns: tuple[str, ...] = (),
    ) -> DriverContext:
        """Build the run's context; ``seed`` makes hold draws repeatable.

        Raises:
            ValueError: ``url`` is not a usable ws:// or wss:// URL.
        """
        return cls(
            target=target,
            session=session,
            url=url,
            ssl_context=ssl_context,
            release=release,
            stop=stop,
            rng=random.Random(seed),
            opener=opener,
            columns=columns,
        )

    def bind_clock(self) -> Callable[[], float]:
        """:attr:`now` for the current Trio run (a context may outlive one run: tests)."""
        clock = trio.lowlevel.current_clock()
        if clock is not self._clock:
            self._clock = clock
            self.now = reader_of(clock)
            self.wire = WireClock.for_clock(clock)
            self.poller = Poller(self.now) if self.parking else None
        return self.now

    def endpoint_for(self, seq: int) -> Endpoint:
        """The endpoint of connection ``seq`` (parsed once per run unless the host varies)."""
        if self.endpoint is not None:
            return self.endpoint
        return Endpoint.parse(self.url.replace(_SEQ, str(seq)), self.target, self.columns)

    def hold_seconds(self) -> float:
        """One draw of ``session.hold``."""
        hold = self.session.hold
        if hold.max <= hold.min:
            return max(0.0, hold.min)
        return self.rng.uniform(hold.min, hold.max)


def _payload(session: SessionConfig) -> bytes:
    """The data message body: random bytes for binary, repeating ASCII for text."""
    size = session.message_size
    if session.binary:
        return random.Random(size).randbytes(size)
    pattern = b"wsload-0123456789abcdefghijklmnopqrstuvwxyz-"
    return (pattern * (size // len(pattern) + 1))[:size]
