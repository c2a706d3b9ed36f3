"""The latency samples of one finished connection: differences of its record's timestamps.

The metrics (µs, docs/design.md §5) and which stamps bound each one; the collector records
what this returns. A metric is present only when both of its stamps are.
"""

from __future__ import annotations

from wsload.core.record import ConnectionRecord, Side

__all__ = ["metric_samples"]


def metric_samples(
    record: ConnectionRecord, release_at: float | None = None, lag_from: float | None = None
) -> list[tuple[str, float]]:
    """The latency samples one record yields, as ``(metric, seconds)`` pairs.

    ``release_at``: a storm's release instant (run clock); a connection whose close began at
    or after it yields ``close_start_lag``, how long wsload took to start *this* close,
    counted from ``lag_from`` (a segmented storm's shared instant, at or before ``release_at``:
    a segment's lateness is in the metric) or else from ``release_at``.

    A metric is present only when both of its stamps are (a terminated connection has no
    ``close_handshake``). Who sent the first Close is ``record.close_initiator``; when the
    driver left it unset it is read from the stamps (our Close before theirs: client first).
    ``close_teardown`` excludes ``ignore_server_close``: there the same interval is the
    *server's* close timeout (``server_close_timeout``, typically 30 s), which would swamp the
    teardown of every behaviour that answered.
    """
    out: list[tuple[str, float]] = []
    r = record
    if r.connect_start is not None and r.connect_end is not None:
        out.append(("connect", r.connect_end - r.connect_start))
    if r.request_sent is not None and r.upgraded is not None:
        out.append(("handshake", r.upgraded - r.request_sent))
    for rtt in r.message_rtts:
        out.append(("message_rtt", rtt))
    for rtt in r.ping_rtts:
        out.append(("ping_rtt", rtt))
    out.extend(r.step_latencies)
    for gap in r.push_intervals:
        out.append(("push_interval", gap))
    received = r.close_received
    if received is not None:
        initiator = r.close_initiator
        if initiator is None:
            first = r.close_sent is not None and r.close_sent <= received
            initiator = Side.CLIENT if first else Side.SERVER
        if initiator is Side.CLIENT:
            if r.close_sent is not None:
                out.append(("close_handshake", received - r.close_sent))
        elif r.upgraded is not None:
            out.append(("server_close_wait", received - r.upgraded))
        if r.eof is not None:
            name = "server_close_timeout" if r.kind == "ignore_server_close" else "close_teardown"
            out.append((name, r.eof - received))
    if release_at is not None and r.close_initiated is not None and r.close_initiated >= release_at:
        origin = release_at if lag_from is None else lag_from
        out.append(("close_start_lag", r.close_initiated - origin))
    if r.socket_closed is not None:
        if r.close_initiated is not None:
            out.append(("close_total", r.socket_closed - r.close_initiated))
        out.append(("session", r.socket_closed - r.scheduled))
    return out
