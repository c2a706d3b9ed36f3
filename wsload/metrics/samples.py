"""The latency samples of one finished connection: differences of its record's timestamps.

The metrics (µs, docs/design.md §5) and which stamps bound each one; the collector records
what this returns. A metric is present only when both of its stamps are; a measurement that
started and never ended is *censored* (``censored_samples``): counted, never dropped.
"""

from __future__ import annotations

from wsload.core.kinds import KINDS
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side

__all__ = ["CENSORING", "CLOSE_METRIC", "censored_samples", "metric_samples"]

CLOSE_METRIC: dict[str, str] = {kind.value: info.close_metric for kind, info in KINDS.items()}
"""Per close kind, its one headline close figure (``KindInfo.close_metric``, docs/outcomes.md):
our Close → theirs for a clean close; the server's Close → its TCP EOF where the server closes
(``ignore_server_close``: the server's own close timeout); the close action → socket closed
where nothing is awaited (``terminate``, ``close_no_wait``) or the reply may be a dropped TCP
(``invalid_close``). Every output's close column is this figure, named."""


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
                # Kernel stamps (docs/results.md, wire time) can put the server's Close on the
                # wire before ours when the two crossed: its reply took no time, not less.
                out.append(("close_handshake", max(0.0, received - r.close_sent)))
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


CENSORING: dict[Outcome, str] = {
    Outcome.CLOSE_TIMEOUT: "timeout",
    Outcome.CONNECT_TIMEOUT: "timeout",
    Outcome.HANDSHAKE_TIMEOUT: "timeout",
    Outcome.MESSAGE_TIMEOUT: "timeout",
    Outcome.NO_SERVER_CLOSE: "timeout",
    Outcome.RESET: "reset",
    Outcome.ABNORMAL: "closed",
    Outcome.INTERRUPTED: "interrupted",
    Outcome.INTERNAL_ERROR: "wsload error",
}
"""The endings that cut a measurement short, and the word a censored figure reads with
(``> 500 ms (timeout)``). A phase answered with a failure (refused, a non-101 status, a
protocol error) is no latency at all: it is counted in the outcomes, not censored."""

_AWAITS_SERVER_CLOSE = frozenset({"await_server_close", "ignore_server_close"})


def censored_samples(record: ConnectionRecord) -> list[tuple[str, float]]:
    """The measurements of ``record`` that started and never got their end stamp, as
    ``(metric, seconds)``: the seconds from the start stamp to the record's last stamp, a
    lower bound of the latency that was not seen (docs/results.md, censored latencies).

    Only a record whose outcome is in ``CENSORING`` has any: the one phase it was waiting in
    when the wait was cut (the connect, the upgrade, the Close reply, the server's Close, the
    EOF), and the session step that timed out (``record.censored``).
    """
    r = record
    if r.outcome not in CENSORING:
        return []
    stamps = (
        r.connect_start, r.connect_end, r.request_sent, r.upgraded, r.close_initiated,
        r.close_sent, r.close_received, r.eof, r.socket_closed,
    )  # fmt: skip
    end = max((t for t in stamps if t is not None), default=r.scheduled)
    out = list(r.censored)

    def cut(metric: str, start: float, stop: float | None = None) -> None:
        out.append((metric, max(0.0, (end if stop is None else stop) - start)))

    if r.connect_start is not None and r.connect_end is None:
        cut("connect", r.connect_start)
    elif r.request_sent is not None and r.upgraded is None:
        cut("handshake", r.request_sent)
    server_first = r.close_initiator is Side.SERVER
    waited = r.kind in _AWAITS_SERVER_CLOSE and r.upgraded is not None and not server_first
    if waited and (r.close_received is None or r.outcome is Outcome.NO_SERVER_CLOSE):
        assert r.upgraded is not None
        cut("server_close_wait", r.upgraded, r.close_sent)  # the wait ended at our fallback
    if r.close_received is None:
        if r.close_sent is not None and not server_first and r.kind != "close_no_wait":
            cut("close_handshake", r.close_sent)  # close_no_wait never waits for the reply
    elif r.eof is None:
        name = "server_close_timeout" if r.kind == "ignore_server_close" else "close_teardown"
        cut(name, r.close_received)
    return out
