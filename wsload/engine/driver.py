"""The client driver: one Trio task per connection, owning its socket from connect to close.

``run_connection`` walks one connection through TCP connect (bound to a source address when
given), TLS for ``wss://``, the hand-written upgrade, the session, and its close behaviour, and
returns the frozen :class:`~wsload.core.record.ConnectionRecord`. Every step is bounded by the
scenario's timeouts; nothing the target or the network does raises out of here: refused,
timed-out, reset, malformed, or silent peers all become an outcome. The socket is always closed,
also when the task is cancelled (then ``Cancelled`` propagates after the close).

Error mapping: ``ECONNREFUSED`` → ``refused``; connect deadline → ``connect_timeout``;
``EMFILE``/``ENFILE``/``EADDRNOTAVAIL``/``ENOBUFS``/``EADDRINUSE`` → ``local_resource``; any other
``OSError`` (also DNS) → ``connect_error``; TLS failures → ``tls_error``; ``ECONNRESET``/``EPIPE``
after the upgrade → ``reset``.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import math
import os
import socket as _stdlib_socket
import sys
from typing import Any

import trio

from wsload.core.closing import CloseState, classify
from wsload.core.deflate import NAME as DEFLATE_NAME
from wsload.core.deflate import PerMessageDeflate
from wsload.core.faults import ProtocolViolation
from wsload.core.frames import FrameReader
from wsload.core.handshake import ResponseParser, UpgradeResponse, new_key
from wsload.core.outcomes import Outcome
from wsload.core.protocol import INBOX_SIZE, ClientProtocol
from wsload.core.record import ConnectionRecord, Side
from wsload.engine.behaviours import Ending, run_behaviour
from wsload.engine.context import (
    ConnectionPlan,
    DriverContext,
    Endpoint,
    make_ssl_context,
)
from wsload.engine.link import Link, close_stream_now, receive_some, send_all
from wsload.engine.oserrors import connect_outcome, tls_cause
from wsload.engine.poller import Poller
from wsload.engine.rawstream import RawIO, RawSocketStream
from wsload.engine.session import run_session, step_label

__all__ = ["run_connection"]

_DEFLATE = (DEFLATE_NAME,)

# Linux: choose the source port at connect() rather than bind(), so that many source
# addresses x destinations do not exhaust ephemeral ports early.
_IP_BIND_ADDRESS_NO_PORT: int | None = getattr(
    _stdlib_socket, "IP_BIND_ADDRESS_NO_PORT", 24 if sys.platform.startswith("linux") else None
)


_NONBLOCK: int = getattr(_stdlib_socket, "SOCK_NONBLOCK", 0)
_STREAM = _stdlib_socket.SOCK_STREAM | _NONBLOCK
"""Linux: the socket is made non-blocking by ``socket()`` itself (Python then knows it has no
timeout), which saves the ``ioctl`` of a ``setblocking(False)`` per connection."""


class _TimedOut(Exception):
    """A bounded wait of the TCP connect (resolving, connecting) reached its deadline."""


def _address_key(host: str, port: int, source: str | None) -> tuple[str, int, int]:
    want = (
        0
        if source is None
        else (_stdlib_socket.AF_INET6 if ":" in source else _stdlib_socket.AF_INET)
    )
    return (host, port, want)


async def _resolve(
    ctx: DriverContext, key: tuple[str, int, int], deadline: float
) -> tuple[int, Any]:
    """``(family, sockaddr)`` for ``key`` (host, port, family wanted), resolved once per run.

    Raises:
        _TimedOut: not resolved by ``deadline``.
    """
    cached = ctx.addresses.get(key)
    if cached is not None:
        return cached
    if ctx.poller is not None:
        await ctx.poller.promote()  # Trio's wait for the resolver thread, in a task
    host, port, want = key
    with trio.move_on_at(deadline):
        infos = await trio.socket.getaddrinfo(
            host, port, family=want, type=_stdlib_socket.SOCK_STREAM
        )
        if not infos:
            raise OSError(errno.EADDRNOTAVAIL, f"no address for {host}")
        family, _, _, _, sockaddr = infos[0]
        resolved = (int(family), sockaddr)
        ctx.addresses[key] = resolved
        return resolved
    raise _TimedOut


async def _connect_raw(
    raw: _socket.socket, sockaddr: Any, deadline: float, poller: Poller | None
) -> None:
    """``trio.socket``'s connect without its per-call address re-resolution (``sockaddr`` is
    already resolved): start a non-blocking connect, wait until writable (by ``deadline``),
    read the result. When the connection is already established as ``connect()`` returns
    (loopback: the kernel completes the handshake synchronously), there is nothing to wait
    for, and no cancel scope is made.

    Raises:
        OSError: the connect failed (``errno`` set: refused, unreachable, ...).
        _TimedOut: not connected by ``deadline``.
    """
    err = raw.connect_ex(sockaddr)
    if err in (errno.EINPROGRESS, errno.EAGAIN):
        try:  # on loopback the handshake is done before connect() returns: skip the wait
            raw.getpeername()
            return
        except OSError:
            pass
        if poller is not None:
            await poller.promote()  # Trio's wait for the connect, in a task
        with trio.move_on_at(deadline) as scope:
            await trio.lowlevel.wait_writable(raw)
        if scope.cancelled_caught:
            raise _TimedOut
        err = raw.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ERROR)
    if err:
        raise OSError(err, f"Error connecting to {sockaddr!r}: {os.strerror(err)}")


class _Attempt:
    """One run of :func:`run_connection`: the stamps before the upgrade, and the socket."""

    __slots__ = (
        "connect_end",
        "connect_start",
        "ctx",
        "eof",
        "http_status",
        "io",
        "link",
        "plan",
        "request_sent",
        "stream",
        "tcp_closed_first",
        "upgraded",
    )

    def __init__(self, plan: ConnectionPlan, ctx: DriverContext) -> None:
        self.plan = plan
        self.ctx = ctx
        self.stream: trio.abc.Stream | None = None
        self.link: Link | None = None
        self.io: RawIO | None = None  # plain TCP only: the one raw fast path
        self.connect_start: float = 0.0
        self.connect_end: float | None = None
        self.request_sent: float | None = None
        self.upgraded: float | None = None
        self.eof: float | None = None
        self.http_status: int | None = None
        self.tcp_closed_first: Side | None = None

    async def run(self) -> ConnectionRecord:
        ctx, plan = self.ctx, self.plan
        ctx.alarm.watch(ctx.stop)
        ctx.alarm.watch(ctx.release, release=True)
        self.connect_start = ctx.bind_clock()()
        try:
            endpoint = ctx.endpoint_for(plan.seq)
        except ValueError as exc:
            return await self._fail(Outcome.CONNECT_ERROR, str(exc))
        failed = await self._connect(endpoint)
        if failed is not None:
            return failed
        link = await self._upgrade(endpoint)
        if isinstance(link, ConnectionRecord):
            return link
        self.link = link
        if ctx.release is not None:
            link.release = plan.close
        if not link.proto.close_expected():
            hold = 0.0 if ctx.release is not None else ctx.hold_seconds()
            await run_session(link, ctx, hold, plan.seq)
        ending = Ending()
        if not link.ended:
            ending = await run_behaviour(link, plan.close, ctx)
        return await self._finish(link, ending)

    async def close_if_open(self) -> None:
        """Close the socket unless already closed (the cancellation path)."""
        stream, self.stream = self.stream, None
        if stream is None:
            return
        if self.link is None or self.link.tracker.state is not CloseState.CLOSED:
            await close_stream_now(stream)

    async def _connect(self, endpoint: Endpoint) -> ConnectionRecord | None:
        ctx = self.ctx
        timeout = ctx.target.connect_timeout
        deadline = self.connect_start + timeout
        tls_started = False
        try:
            if ctx.opener is None and not endpoint.secure:
                # the hot path: a cancel scope only around a wait that actually happens
                raw = await self._open_tcp(endpoint, deadline)
                self.stream = RawSocketStream(raw)
                self.io = ctx.wire.raw_io(raw, ctx.poller)
            else:
                if ctx.poller is not None:
                    await ctx.poller.promote()  # TLS, a test's opener: Trio's waits, in a task
                with trio.move_on_at(deadline) as scope:
                    if ctx.opener is not None:
                        self.stream = await ctx.opener(self.plan, endpoint)
                    else:
                        raw = await self._open_tcp(endpoint, math.inf, tls=True)
                        assert isinstance(raw, _stdlib_socket.socket)
                        tls_started = True
                        self.stream = trio.SocketStream(trio.socket.from_stdlib_socket(raw))
                        tls = trio.SSLStream(
                            self.stream,
                            ctx.ssl_context or make_ssl_context(ctx.target),
                            server_hostname=endpoint.server_name,
                            https_compatible=True,
                        )
                        self.stream = tls
                        await tls.do_handshake()
                if scope.cancelled_caught:
                    raise _TimedOut
                ctx.wire.loop += 1  # TLS (or a test's opener): the loop's stamps
        except _TimedOut:
            what = "TLS handshake" if tls_started else "TCP connect"
            return await self._fail(Outcome.CONNECT_TIMEOUT, f"{what} not done in {timeout:g}s")
        except OSError as exc:
            return await self._fail(connect_outcome(exc), str(exc) or type(exc).__name__)
        except trio.BrokenResourceError as broken:
            cause = broken.__cause__ or broken
            return await self._fail(Outcome.TLS_ERROR, f"TLS handshake failed: {cause}")
        self.connect_end = ctx.now()
        return None

    async def _open_tcp(
        self, endpoint: Endpoint, deadline: float, tls: bool = False
    ) -> _socket.socket:
        """A connected non-blocking TCP socket (closed again if anything fails): the C type
        itself, without ``socket.socket``'s interpreted ``__init__`` and ``close`` (three calls
        per connection), unless it is to carry TLS (``trio.socket`` wants ``socket.socket``).

        Raises:
            OSError: resolving or connecting failed.
            _TimedOut: not connected by ``deadline``.
        """
        source = self.plan.source_address
        key = _address_key(endpoint.host, endpoint.port, source)
        family, sockaddr = await _resolve(self.ctx, key, deadline)
        raw = (_stdlib_socket.socket if tls else _socket.socket)(family, _STREAM)
        try:
            if not _NONBLOCK:
                raw.setblocking(False)
            if source is not None:
                if _IP_BIND_ADDRESS_NO_PORT is not None:
                    with contextlib.suppress(OSError):
                        raw.setsockopt(_stdlib_socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
                raw.bind((source, 0))
            await _connect_raw(raw, sockaddr, deadline, self.ctx.poller)
        except BaseException:
            trio.lowlevel.notify_closing(raw)
            raw.close()
            raise
        return raw

    async def _upgrade(self, endpoint: Endpoint) -> Link | ConnectionRecord:
        ctx = self.ctx
        key = new_key()
        parser = ResponseParser(key, ctx.target.subprotocols, deflate=ctx.target.compression)
        timeout = ctx.target.handshake_timeout
        response = None
        request = endpoint.template.render(key, self.plan.seq, self.plan.row)
        sent = ctx.now()  # before the write: see Link._write_close
        deadline = sent + timeout
        io = self.io
        try:
            if io is not None and io.parks:  # the reads park with the deadline: no scope
                response = await self._exchange(request, parser, sent, deadline)
            else:
                if ctx.poller is not None:
                    await ctx.poller.promote()  # a cancel scope: in a task
                with trio.CancelScope(deadline=deadline):
                    response = await self._exchange(request, parser, sent, math.inf)
        except ProtocolViolation as exc:
            return await self._fail(Outcome.HANDSHAKE_INVALID, str(exc))
        except trio.BrokenResourceError as broken:
            tls = tls_cause(broken)
            if tls is not None:
                return await self._fail(Outcome.TLS_ERROR, f"TLS failed in the upgrade: {tls}")
            self.eof = ctx.now()
            self.tcp_closed_first = Side.SERVER
            cause = broken.__cause__ or broken
            return await self._fail(Outcome.HANDSHAKE_INVALID, f"reset during the upgrade: {cause}")
        if response is None:
            detail = f"no complete upgrade response within {timeout:g}s"
            return await self._fail(Outcome.HANDSHAKE_TIMEOUT, detail)
        if not response.accepted:
            self.http_status = response.status
            detail = f"HTTP {response.status} {response.reason}".rstrip()
            return await self._fail(Outcome.HANDSHAKE_REJECTED, detail)
        if response.subprotocol is None and ctx.target.require_subprotocol:
            offered = ", ".join(ctx.target.subprotocols)
            detail = f"the server selected no subprotocol (offered {offered}; required)"
            return await self._fail(Outcome.HANDSHAKE_INVALID, detail)
        loop_now = ctx.now()
        self.upgraded = now = ctx.wire.arrival(self.io, loop_now)
        deflate = None
        if response.deflate is not None:  # the offer was accepted (so compression is set)
            deflate = PerMessageDeflate(
                response.deflate,
                client=True,
                max_message_size=ctx.target.max_message_size,
                threshold=ctx.target.compression.threshold if ctx.target.compression else 0,
            )
        ctx.upgraded[self.plan.seq] = now  # the runner's record if this task is cancelled
        # reflect is on from the first byte: a message in the same read as the 101 is
        # handled exactly like one that arrives later
        session = ctx.session
        proto = ClientProtocol(
            FrameReader(ctx.target.max_message_size, () if deflate is None else (deflate,)),
            reflect=session.reflect,
            encoder=None if deflate is None else deflate.encode,
            rules=session.on,
            inbox_size=INBOX_SIZE if session.steps else 0,  # echo mode: the echo, not a push
            seq=self.plan.seq,
            row=self.plan.row,
        )
        proto.subprotocol = response.subprotocol or ""
        assert self.stream is not None
        link = Link(
            self.stream, proto, ctx.session.message_timeout, io=self.io, now=ctx.now, wire=ctx.wire
        )
        if response.trailing:  # the 101's stamp is the arrival of the bytes after it
            proto.late_stamps += 1
            await link.absorb(response.trailing, now, loop_now)
        return link

    async def _exchange(
        self, request: bytes, parser: ResponseParser, sent: float, deadline: float
    ) -> UpgradeResponse | None:
        """Write the upgrade request (stamped ``sent``) and read until the response is whole;
        None when ``deadline`` came first.

        Raises:
            ProtocolViolation: the response is malformed, or the server closed TCP first.
            trio.BrokenResourceError: a reset (or a TLS failure).
        """
        stream, io = self.stream, self.io
        assert stream is not None
        if not await send_all(stream, io, request, deadline):
            return None
        self.request_sent = sent
        while True:
            data = await receive_some(stream, io, deadline)
            if data is None:
                return None
            if not data:
                self.eof = self.ctx.now()
                self.tcp_closed_first = Side.SERVER
                raise parser.eof()
            response = parser.feed(data)
            if response is not None:
                return response

    async def _finish(self, link: Link, ending: Ending) -> ConnectionRecord:
        await link.close(rst=ending.rst)
        self.stream = None
        if link.io is not None and link.io.stamped:
            self.ctx.wire.coalesced += link.proto.late_stamps
        outcome, detail = classify(
            self.plan.close.kind,
            link.tracker,
            timed_out=ending.timed_out,
            stopped=ending.stopped,
            failure=link.proto.failure,
        )
        step = link.proto.step
        if outcome is Outcome.SERVER_CLOSED and not detail and step is not None:
            t = link.tracker
            code = "without a code" if t.code_received is None else str(t.code_received)
            reason = f" {t.reason_received!r}" if t.reason_received else ""
            detail = f"server closed {code}{reason} during step '{step_label(*step)}'"
        return self.plan.upgraded_record(
            outcome,
            detail,
            link,
            self.connect_start,
            self.connect_end,
            self.request_sent,
            self.upgraded,
            _DEFLATE if link.proto.encoder is not None else (),  # set iff deflate agreed
        )

    async def _fail(self, outcome: Outcome, detail: str) -> ConnectionRecord:
        """A connection that never got upgraded: close what is open and record why."""
        stream, self.stream = self.stream, None
        if stream is not None:
            await close_stream_now(stream)
            if self.tcp_closed_first is None:
                self.tcp_closed_first = Side.CLIENT
        return self.plan.record(
            outcome,
            detail,
            connect_start=self.connect_start,
            connect_end=self.connect_end,
            request_sent=self.request_sent,
            eof=self.eof,
            socket_closed=self.ctx.now(),
            http_status=self.http_status,
            tcp_closed_first=self.tcp_closed_first,
        )


async def run_connection(plan: ConnectionPlan, ctx: DriverContext) -> ConnectionRecord:
    """Make one connection as ``plan`` says and return its record.

    Never raises for anything the target or the network does (each such thing is an outcome
    in the record). Always closes its socket; when cancelled, closes it and lets ``Cancelled``
    propagate.
    """
    attempt = _Attempt(plan, ctx)
    try:
        return await attempt.run()
    finally:
        await attempt.close_if_open()
