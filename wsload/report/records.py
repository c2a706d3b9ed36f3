"""``--record-connections FILE``: one JSON line per connection, streamed, bounded, redacted.

The collector keeps no per-connection data (memory stays flat over millions of connections);
when someone needs the individual connections (which one got 1006, when), this writer streams
them to a file instead of keeping them. Lines wait in a buffer of at most ``max_buffer`` and go
out when it is full and at every interval, so memory is bounded by the buffer whatever the run's
length, and a crash loses at most one interval. Timestamps are seconds since the run's start
(the runner's clock origin), so lines from one run compare directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from wsload.core.browser import browser_close_event
from wsload.core.record import ConnectionRecord
from wsload.metrics.counts import MESSAGE_COUNTERS
from wsload.report import files
from wsload.report.redact import redact_text

__all__ = ["STAMPS", "ConnectionLog", "record_to_dict"]

STAMPS = (
    "scheduled",
    "connect_start",
    "connect_end",
    "request_sent",
    "upgraded",
    "close_initiated",
    "close_sent",
    "close_received",
    "eof",
    "socket_closed",
)
"""The record's timestamps, in the order a connection goes through them."""

_DEFAULT_BUFFER = 1000


def _stamp(value: float | None, origin: float) -> float | None:
    return None if value is None else round(value - origin, 6)


def record_to_dict(
    record: ConnectionRecord, origin: float = 0.0, secrets: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One connection as a JSON-able dict (docs/results.md, "connections.jsonl").

    Args:
        record: the connection.
        origin: the run's start on the same clock; stamps are made relative to it.
        secrets: the scenario's ``{env:NAME}`` values, redacted from the detail.
    """
    out: dict[str, Any] = {
        "seq": record.seq,
        "attempt": record.attempt,
        "label": record.label,
        "kind": record.kind,
        "outcome": str(record.outcome),
    }
    for name in STAMPS:
        out[name] = _stamp(getattr(record, name), origin)
    out["message_rtts"] = [round(v, 6) for v in record.message_rtts]
    out["ping_rtts"] = [round(v, 6) for v in record.ping_rtts]
    steps: dict[str, list[float]] = {}
    for metric, seconds in record.step_latencies:
        steps.setdefault(metric, []).append(round(seconds, 6))
    out["step_latencies"] = steps
    out["push_intervals"] = [round(v, 6) for v in record.push_intervals]
    for name in MESSAGE_COUNTERS:
        out[name] = getattr(record, name)
    out["code_sent"] = record.code_sent
    out["reason_sent"] = record.reason_sent
    out["code_received"] = record.code_received
    out["reason_received"] = record.reason_received
    out["http_status"] = record.http_status
    out["close_initiator"] = None if record.close_initiator is None else str(record.close_initiator)
    out["tcp_closed_first"] = (
        None if record.tcp_closed_first is None else str(record.tcp_closed_first)
    )
    out["reset"] = record.reset
    out["extensions"] = list(record.extensions)
    out["subprotocol"] = record.subprotocol
    event = browser_close_event(record)
    out["close_event"] = {"code": event.code, "reason": event.reason, "wasClean": event.was_clean}
    out["detail"] = redact_text(record.detail, secrets)
    return out


class ConnectionLog:
    """Streams records to a JSON-lines file (user-only, like every results file).

    Use as a context manager; :meth:`add` per record, :meth:`flush` per interval.
    """

    def __init__(
        self, path: Path, *, max_buffer: int = _DEFAULT_BUFFER, secrets: tuple[str, ...] = ()
    ) -> None:
        """Create (truncate) ``path`` (``secrets``: ``{env:NAME}`` values to redact).

        Raises:
            ToolError: the file cannot be created.
        """
        self.path = Path(path)
        self.max_buffer = max(1, max_buffer)
        self.secrets = secrets
        self.origin = 0.0
        self.written = 0
        self._buffer: list[str] = []
        self._stream: TextIO | None = files.open_log(self.path)

    def add(self, record: ConnectionRecord) -> None:
        """Buffer one record's line; write the buffer out when it is full."""
        self._buffer.append(
            json.dumps(
                record_to_dict(record, self.origin, self.secrets),
                ensure_ascii=False,
                allow_nan=False,
            )
        )
        if len(self._buffer) >= self.max_buffer:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines and flush them to the OS."""
        if self._stream is None or not self._buffer:
            return
        lines, self._buffer = self._buffer, []
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()
        self.written += len(lines)

    def close(self) -> None:
        """Flush and close (idempotent)."""
        self.flush()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def __enter__(self) -> ConnectionLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
