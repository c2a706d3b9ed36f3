"""The logical clients of a ``[reconnect]`` run, from their connections' records.

Pure bookkeeping (no Trio, no I/O), fed every record as it ends: one logical client is one
``seq``, its attempts arrive in order (``attempt`` 1, 2, ...). ``as_dict()`` is summary.json's
``reconnect``. Only a few numbers per client are kept, never the records.

- ``reconnect_delay``: each wait between an attempt's end and the next one's start (the
  backoff as it happened);
- ``clean``: clients that ended the way their kind calls clean at least once and did not give
  up (a deploy's clients closed cleanly at the signal, then reconnected: clean), and ``steps``:
  per ``step.<name>``, the clients that matched it at least once: the per-client shares the
  headline and the ``step.<name>.count`` thresholds use (per attempt: the connections' own);
- ``time_to_reconnect``: from losing the connection (the server's Close or TCP EOF, whichever
  came first; for a client that never got upgraded, its first failed attempt's end) to being
  upgraded again: the outage a user of that client saw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from wsload.core.kinds import KINDS, CloseKind
from wsload.core.record import ConnectionRecord
from wsload.metrics.histograms import (
    decode,
    encode,
    histogram_stats,
    new_histogram,
    record,
    seconds_to_us,
)
from wsload.metrics.wire import count, counter
from wsload.scenario.model import ReconnectConfig

__all__ = ["ADMISSION_REFUSALS", "ReconnectAudit", "ReconnectTotals"]

ADMISSION_REFUSALS = {"http_502": 502, "http_503": 503}
_TRY_AGAIN_LATER = 1013
_KIND_NAMES = frozenset(kind.value for kind in CloseKind)


@dataclass(slots=True)
class _Client:
    attempts: int = 0
    ended: float | None = None  # the last attempt's socket_closed
    lost: float | None = None  # connection lost, not upgraded again yet
    reconnected: bool = False
    last_outcome: str = ""
    clean: bool = False  # some attempt ended the way its kind calls clean
    # step metrics it matched at least once (a frozenset: the empty one is shared, where an
    # empty set per client cost 216 bytes, 100,000 clients in a deploy)
    steps: frozenset[str] = frozenset()


class ReconnectAudit:
    """Logical clients, attempts, backoff waits and times to reconnect of one run."""

    def __init__(self, config: ReconnectConfig) -> None:
        self.config = config
        self.clients: dict[int, _Client] = {}
        self.delay = new_histogram()
        self.time_to_reconnect = new_histogram()
        self.refusals: Counter[str] = Counter()

    def add(self, rec: ConnectionRecord) -> None:
        client = self.clients.get(rec.seq)
        if client is None:
            client = self.clients[rec.seq] = _Client()
        elif client.ended is not None and rec.attempt > 1:
            record(self.delay, seconds_to_us(max(0.0, rec.scheduled - client.ended)))
        client.attempts = max(client.attempts, rec.attempt)
        if rec.upgraded is not None and client.lost is not None:
            record(self.time_to_reconnect, seconds_to_us(max(0.0, rec.upgraded - client.lost)))
            client.reconnected, client.lost = True, None
        if rec.outcome in self.config.on and client.lost is None:
            moments = (rec.close_received, rec.eof) if rec.upgraded is not None else ()
            seen = [t for t in (*moments, rec.socket_closed) if t is not None]
            client.lost = min(seen) if seen else None
        client.ended = rec.socket_closed
        client.last_outcome = str(rec.outcome)
        kind = KINDS.get(CloseKind(rec.kind)) if rec.kind in _KIND_NAMES else None
        if kind is not None and rec.outcome is kind.clean:
            client.clean = True
        if rec.step_latencies:
            client.steps = client.steps.union(metric for metric, _ in rec.step_latencies)
        if rec.http_status in ADMISSION_REFUSALS.values():
            self.refusals[f"http_{rec.http_status}"] += 1
        if rec.code_received == _TRY_AGAIN_LATER:
            self.refusals["close_1013"] += 1

    def totals(self) -> ReconnectTotals:
        """The figures of these clients, in a form other processes' add to exactly."""
        totals = ReconnectTotals(
            clients=len(self.clients),
            attempts_total=sum(c.attempts for c in self.clients.values()),
            reconnected=sum(1 for c in self.clients.values() if c.reconnected),
            delay=self.delay,
            time_to_reconnect=self.time_to_reconnect,
            refusals=Counter(self.refusals),
        )
        on, most = self.config.on, self.config.max_attempts
        for client in self.clients.values():
            record(totals.attempts, client.attempts)
            given_up = client.last_outcome in on and client.attempts >= most
            totals.gave_up += given_up
            totals.clean += client.clean and not given_up
            totals.steps.update(client.steps)
        return totals

    def as_dict(self) -> dict[str, Any]:
        """summary.json ``reconnect`` (docs/results.md)."""
        return self.totals().as_dict()


@dataclass(slots=True)
class ReconnectTotals:
    """The logical clients' figures, summed over processes: a logical client (one ``seq``)
    lives in one segment, so the segments' counts add and their histograms merge exactly."""

    clients: int = 0
    attempts_total: int = 0
    reconnected: int = 0
    gave_up: int = 0
    clean: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    attempts: HdrHistogram = field(default_factory=new_histogram)
    delay: HdrHistogram = field(default_factory=new_histogram)
    time_to_reconnect: HdrHistogram = field(default_factory=new_histogram)
    refusals: Counter[str] = field(default_factory=Counter)

    def merge(self, other: ReconnectTotals) -> None:
        self.clients += other.clients
        self.attempts_total += other.attempts_total
        self.reconnected += other.reconnected
        self.gave_up += other.gave_up
        self.clean += other.clean
        self.steps.update(other.steps)
        self.attempts.add(other.attempts)
        self.delay.add(other.delay)
        self.time_to_reconnect.add(other.time_to_reconnect)
        self.refusals.update(other.refusals)

    def as_dict(self) -> dict[str, Any]:
        """summary.json ``reconnect`` (docs/results.md)."""
        return {
            "clients": self.clients,
            "attempts_total": self.attempts_total,
            "reconnected": self.reconnected,
            "gave_up": self.gave_up,
            "clean": self.clean,
            "steps": dict(sorted(self.steps.items())),
            "attempts": histogram_stats(self.attempts),
            "admission_refused": {
                "http_502": self.refusals["http_502"],
                "http_503": self.refusals["http_503"],
                "close_1013": self.refusals["close_1013"],
            },
            "latency_us": {
                "reconnect_delay": histogram_stats(self.delay),
                "time_to_reconnect": histogram_stats(self.time_to_reconnect),
            },
        }

    def to_wire(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "attempts_total": self.attempts_total,
            "reconnected": self.reconnected,
            "gave_up": self.gave_up,
            "clean": self.clean,
            "steps": dict(self.steps),
            "attempts": encode(self.attempts),
            "delay": encode(self.delay),
            "time_to_reconnect": encode(self.time_to_reconnect),
            "refusals": dict(self.refusals),
        }

    @classmethod
    def from_wire(cls, data: Any) -> ReconnectTotals:
        """Raises: ValueError naming the field that is missing or malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("reconnect: expected an object")
        try:
            return cls(
                clients=count(data["clients"], "reconnect.clients"),
                attempts_total=count(data["attempts_total"], "reconnect.attempts_total"),
                reconnected=count(data["reconnected"], "reconnect.reconnected"),
                gave_up=count(data["gave_up"], "reconnect.gave_up"),
                clean=count(data["clean"], "reconnect.clean"),
                steps=Counter(counter(data["steps"], "reconnect.steps", str)),
                attempts=decode(data["attempts"]),
                delay=decode(data["delay"]),
                time_to_reconnect=decode(data["time_to_reconnect"]),
                refusals=Counter(counter(data["refusals"], "reconnect.refusals", str)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"reconnect: missing or malformed field {exc}") from None
