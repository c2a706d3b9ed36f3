"""The reference engine: the same connection made with trio-websocket (engine "trio-websocket").

Why keep it: it is an independent client implementation to cross-check the wsproto driver's
figures against, and it shows concretely what a high-level library cannot measure. It does only
what trio-websocket can: ``clean`` (``aclose(code, reason)`` bounded by the timeout) and
``terminate`` (close the underlying stream; RST with ``rst`` on ws://). The scenario parser
refuses other kinds with this engine; called with one anyway, it raises ``ValueError``.

It opens TCP (and TLS) itself and hands the stream to ``wrap_client_stream``, so that the
socket is closed on every path (trio-websocket leaks it when the upgrade is rejected). Its
limits, by construction (docs/engine.md): "Close received" is when ``aclose``
returned; it closes TCP itself right after the reply and never sees the server's EOF (``eof``
stays None, ``tcp_closed_first`` is ``client``); an unanswered Close is only known from our own
deadline (trio-websocket itself would report it as 1000); a server's Close during the session
is answered by its reader task and seen afterwards; no pings, no reflect. It uses a reader task
per connection (trio-websocket's design), so it is not for high rates.
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
from typing import Any

import h11
import trio
import trio_websocket
import wsproto.utilities

from wsload.core.handshake import host_header
from wsload.core.kinds import KINDS, CloseKind
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.engine.context import ConnectionPlan, DriverContext, make_ssl_context
from wsload.engine.link import socket_of
from wsload.engine.oserrors import connect_outcome, os_error_in

__all__ = ["REFERENCE_KINDS", "run_connection_reference"]

REFERENCE_KINDS: tuple[CloseKind, ...] = tuple(k for k, info in KINDS.items() if info.reference)
"""The close kinds this engine can do (:data:`wsload.core.kinds.KINDS`)."""
_NAME = "trio-websocket reference engine"


_TARGET_ERRORS = (
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    trio.BrokenResourceError,
    trio.TooSlowError,
    OSError,
    # a malformed upgrade response (garbage, wrong accept key, huge headers) escapes
    # trio-websocket's reader task as h11's or wsproto's error instead of a HandshakeError
    h11.ProtocolError,
    wsproto.utilities.ProtocolError,
)


async def run_connection_reference(plan: ConnectionPlan, ctx: DriverContext) -> ConnectionRecord:
    """Make one connection with trio-websocket (close kinds ``clean`` and ``terminate`` only).

    Never raises for what the target does; closes its stream also when cancelled.

    Raises:
        ValueError: ``plan.close.kind`` is not one of :data:`REFERENCE_KINDS`.
    """
    spec = plan.close
    if spec.kind not in REFERENCE_KINDS:
        raise ValueError(f"the trio-websocket engine cannot do close kind {spec.kind.value!r}")
    fields: dict[str, Any] = {"connect_start": trio.current_time()}
    target = ctx.target
    endpoint = ctx.endpoint_for(plan.seq)
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] | None = None
    try:
        try:
            with trio.fail_after(target.connect_timeout):
                stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
                if endpoint.secure:
                    stream = trio.SSLStream(
                        stream,
                        ctx.ssl_context or make_ssl_context(target),
                        server_hostname=endpoint.server_name,
                        https_compatible=True,
                    )
                    await stream.do_handshake()
        except trio.TooSlowError:
            return _record(plan, fields, Outcome.CONNECT_TIMEOUT, "no connection in time")
        except trio.BrokenResourceError as exc:
            return _record(plan, fields, Outcome.TLS_ERROR, str(exc.__cause__ or exc))
        except OSError as exc:
            cause = os_error_in(exc) or exc
            return _record(plan, fields, connect_outcome(cause), str(cause))
        fields["connect_end"] = trio.current_time()
        try:
            return await _upgraded(stream, plan, ctx, fields)
        except BaseExceptionGroup as group:  # trio-websocket fails from its reader task
            _, rest = group.split(_TARGET_ERRORS)
            if rest is not None:
                raise
            if "upgraded" in fields:
                outcome, detail = _session_failure(group)
                return _record(plan, fields, outcome, detail)
            outcome, detail, status = _handshake_failure(group)
            fields["http_status"] = status
            return _record(plan, fields, outcome, detail)
    finally:
        if stream is not None:
            await trio.aclose_forcefully(stream)


def _leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _session_failure(group: BaseExceptionGroup[BaseException]) -> tuple[Outcome, str]:
    """Outcome and detail when trio-websocket's reader failed after the upgrade.

    A reset is a reset; anything else is trio-websocket refusing what the server sent, e.g.
    a Ping after our Close (legal, but wsproto will not send the Pong then): ``protocol_error``.
    """
    leaf = _leaf(group)
    if isinstance(leaf, (trio.BrokenResourceError, OSError)):
        return Outcome.RESET, f"connection failed after the upgrade: {leaf!r}"
    return Outcome.PROTOCOL_ERROR, f"trio-websocket failed after the upgrade: {leaf!r}"


def _handshake_failure(
    group: BaseExceptionGroup[BaseException],
) -> tuple[Outcome, str, int | None]:
    """Outcome, detail and HTTP status of an upgrade that trio-websocket failed."""
    leaf = _leaf(group)
    if isinstance(leaf, trio_websocket.ConnectionRejected):
        return Outcome.HANDSHAKE_REJECTED, f"HTTP {leaf.status_code}", leaf.status_code
    if isinstance(leaf, trio.TooSlowError):
        return Outcome.HANDSHAKE_TIMEOUT, "not upgraded in time", None
    return Outcome.HANDSHAKE_INVALID, repr(leaf), None


async def _upgraded(
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
    plan: ConnectionPlan,
    ctx: DriverContext,
    fields: dict[str, Any],
) -> ConnectionRecord:
    target = ctx.target
    endpoint = ctx.endpoint_for(plan.seq)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in target.headers]
    if target.origin is not None:
        headers.append((b"Origin", target.origin.encode("latin-1")))
    async with trio.open_nursery() as nursery:
        fields["request_sent"] = trio.current_time()
        with trio.fail_after(target.handshake_timeout):
            ws = await trio_websocket.wrap_client_stream(
                nursery,
                stream,
                host_header(endpoint.host, endpoint.port, endpoint.secure),
                endpoint.resource.replace("{seq}", str(plan.seq)),
                subprotocols=target.subprotocols or None,
                extra_headers=headers,
                max_message_size=target.max_message_size,
            )
        try:
            return await _session_and_close(ws, plan, ctx, fields)
        finally:
            await trio.aclose_forcefully(stream)  # trio-websocket's reader ends with it
            nursery.cancel_scope.cancel()
    raise AssertionError("unreachable")  # pragma: no cover (the nursery returns or raises)


async def _session_and_close(
    ws: trio_websocket.WebSocketConnection,
    plan: ConnectionPlan,
    ctx: DriverContext,
    fields: dict[str, Any],
) -> ConnectionRecord:
    session, spec = ctx.session, plan.close
    fields["upgraded"] = ctx.upgraded[plan.seq] = trio.current_time()
    ctx.wire.loop += 1  # trio-websocket reads for us: the loop's stamps
    message: str | bytes = ctx.payload if session.binary else ctx.payload.decode("ascii")
    rtts: list[float] = []
    fields["message_rtts"] = rtts
    try:
        for _ in range(session.messages):
            sent = trio.current_time()
            with trio.fail_after(session.message_timeout):
                await ws.send_message(message)
                if session.await_echo:
                    await ws.get_message()
                    rtts.append(trio.current_time() - sent)
            await trio.sleep(session.message_interval)
        await _hold(ctx)
    except trio.TooSlowError:
        return _record(plan, fields, Outcome.MESSAGE_TIMEOUT, "no echo in time")
    except trio_websocket.ConnectionClosed:
        pass
    if ws.closed is not None:  # the server closed (trio-websocket answered) or dropped TCP
        code = ws.closed.code
        now = trio.current_time()
        if code == 1006:
            fields["close_initiated"] = None
            return _record(plan, fields, Outcome.ABNORMAL, "server closed TCP without a Close")
        fields.update(close_initiated=now, close_received=now, close_initiator=Side.SERVER)
        fields["code_received"] = None if code == 1005 else code
        return _record(
            plan, fields, Outcome.SERVER_CLOSED, "answered by trio-websocket; times approximate"
        )
    fields["close_initiated"] = trio.current_time()
    if spec.kind == "terminate":
        sock = socket_of(ws._stream) if spec.rst else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await ws._stream.aclose()
        return _record(plan, fields, Outcome.TERMINATED, "")
    fields.update(
        close_sent=fields["close_initiated"], code_sent=spec.code, reason_sent=spec.reason
    )
    fields["close_initiator"] = Side.CLIENT
    with trio.move_on_after(spec.timeout) as scope:
        await ws.aclose(spec.code, spec.reason or None)
    if scope.cancelled_caught or ws.closed is None:
        return _record(plan, fields, Outcome.CLOSE_TIMEOUT, "no Close reply in time")
    code = ws.closed.code
    if code == 1006:
        return _record(
            plan, fields, Outcome.ABNORMAL, "server closed TCP without answering our Close"
        )
    fields.update(close_received=trio.current_time(), code_received=None if code == 1005 else code)
    return _record(plan, fields, Outcome.CLEAN, "closed TCP itself after the reply (no server EOF)")


async def _hold(ctx: DriverContext) -> None:
    """Hold for ``session.hold`` (or until ``release``); ``stop`` cuts it short."""
    seconds = math.inf if ctx.release is not None else ctx.hold_seconds()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for event in (ctx.release, ctx.stop):
                if event is not None:
                    nursery.start_soon(_cancel_when_set, event, nursery.cancel_scope)
            await trio.sleep_forever()


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _record(
    plan: ConnectionPlan, fields: dict[str, Any], outcome: Outcome, detail: str
) -> ConnectionRecord:
    """The record from what was gathered; the socket counts as closed now."""
    rtts = fields.pop("message_rtts", [])
    return plan.record(
        outcome,
        f"{_NAME}: {detail}" if detail else "",
        **fields,
        message_rtts=tuple(rtts),
        socket_closed=trio.current_time(),
        tcp_closed_first=Side.CLIENT if fields.get("upgraded") is not None else None,
    )
