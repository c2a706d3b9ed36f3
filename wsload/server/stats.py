"""What the built-in server saw: the other side of a load test.

A load tester reports what its clients saw; these counters report what the *server* saw, which
is the half users cannot get from other tools: which close codes actually arrived, how many
connections ended without any Close (1006 as the server sees it), and who closed TCP first.

Counters are plain ints and dicts mutated by the connection tasks of one Trio run (one thread,
no locks). :meth:`ServerStats.as_dict` is merged by the runner into ``summary.json``'s
``server`` section: snake_case keys, close codes and HTTP statuses as string keys.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wsload.core.codes import label

__all__ = ["ServerStats"]


def _by_key(counter: Counter[int] | Counter[str]) -> dict[str, int]:
    """A counter as a JSON object with sorted string keys (codes, statuses, names)."""
    items: list[tuple[int | str, int]] = list(counter.items())
    return {str(key): n for key, n in sorted(items, key=lambda item: item[0])}


@dataclass(slots=True)
class ServerStats:
    """Live counters of one built-in server.

    Attributes:
        connections_accepted: TCP connections accepted.
        upgrades_ok: upgrades answered with 101.
        upgrades_rejected: deliberate rejections (``reject_share``) per HTTP status.
        upgrades_failed: connections that never completed a valid upgrade request.
        upgrade_failures: ``upgrades_failed`` by reason (``bad_request``, ``bad_version``,
            ``bad_key``, ``no_upgrade``, ``too_large``, ``timeout``, ``eof``, ...).
        open: WebSocket connections open now (upgraded, socket not yet closed).
        peak_open: the highest ``open`` seen.
        messages_in / messages_out: complete data messages received / sent (echoes).
        pings_answered: Pings answered with a Pong.
        close_codes_received: codes of the clients' Close frames (1005: Close without a code;
            1006: the connection ended without any valid Close from the client).
        ended_without_close: upgraded connections that ended with no valid Close received
            (the same number as ``close_codes_received["1006"]``).
        close_codes_sent: codes of the Close frames the server sent.
        tcp_closed_first_by_server / tcp_closed_first_by_client: for upgraded connections,
            which side closed TCP first (RFC 6455 §7.1.1 wants the server).
        server_initiated: connections the server closed on its own (``close_after``,
            ``close_after_messages``) by ``close_action`` (``close``, ``fin``, ``rst``).
        close_timeouts: the server sent a Close and the client never answered within
            ``close_timeout``: TCP dropped.
        mute_drops: ``close_reply = "never"``: TCP dropped after ``close_timeout``.
        protocol_errors: malformed client frames (answered with Close 1002/1007).
        send_timeouts: a client stopped reading and the server gave up sending.
        storms: shutdown storms run.
        storm_closed: Close frames sent by shutdown storms.
        storm_terminated: connections terminated because a storm's grace ran out.
        deflate_connections: upgrades that accepted permessage-deflate (``compression``).
        compressed_messages_in: data messages that arrived compressed (RSV1 set): the
            server's evidence that the clients really compressed.
    """

    connections_accepted: int = 0
    upgrades_ok: int = 0
    upgrades_rejected: Counter[int] = field(default_factory=Counter)
    upgrades_failed: int = 0
    upgrade_failures: Counter[str] = field(default_factory=Counter)
    open: int = 0
    peak_open: int = 0
    messages_in: int = 0
    messages_out: int = 0
    pings_answered: int = 0
    close_codes_received: Counter[int] = field(default_factory=Counter)
    ended_without_close: int = 0
    close_codes_sent: Counter[int] = field(default_factory=Counter)
    tcp_closed_first_by_server: int = 0
    tcp_closed_first_by_client: int = 0
    server_initiated: Counter[str] = field(default_factory=Counter)
    close_timeouts: int = 0
    mute_drops: int = 0
    protocol_errors: int = 0
    send_timeouts: int = 0
    storms: int = 0
    storm_closed: int = 0
    storm_terminated: int = 0
    deflate_connections: int = 0
    compressed_messages_in: int = 0

    def opened(self) -> None:
        """Count an upgraded connection as open (keeps ``peak_open`` current)."""
        self.open += 1
        if self.open > self.peak_open:
            self.peak_open = self.open

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot (the ``server`` section of summary.json)."""
        return {
            "connections_accepted": self.connections_accepted,
            "upgrades_ok": self.upgrades_ok,
            "upgrades_rejected": _by_key(self.upgrades_rejected),
            "upgrades_failed": self.upgrades_failed,
            "upgrade_failures": _by_key(self.upgrade_failures),
            "open": self.open,
            "peak_open": self.peak_open,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "pings_answered": self.pings_answered,
            "close_codes_received": _by_key(self.close_codes_received),
            "ended_without_close": self.ended_without_close,
            "close_codes_sent": _by_key(self.close_codes_sent),
            "tcp_closed_first": {
                "server": self.tcp_closed_first_by_server,
                "client": self.tcp_closed_first_by_client,
            },
            "server_initiated": _by_key(self.server_initiated),
            "close_timeouts": self.close_timeouts,
            "mute_drops": self.mute_drops,
            "protocol_errors": self.protocol_errors,
            "send_timeouts": self.send_timeouts,
            "storms": self.storms,
            "storm_closed": self.storm_closed,
            "storm_terminated": self.storm_terminated,
            "deflate_connections": self.deflate_connections,
            "compressed_messages_in": self.compressed_messages_in,
        }

    def render(self) -> str:
        """A plain-text table for ``wsload serve``'s exit (no colour: it may go to a log)."""
        rows: list[tuple[str, str]] = [
            ("connections accepted", str(self.connections_accepted)),
            ("upgrades ok", str(self.upgrades_ok)),
        ]
        rows += [
            (f"upgrades rejected {status}", str(n))
            for status, n in sorted(self.upgrades_rejected.items())
        ]
        rows.append(("upgrades failed", str(self.upgrades_failed)))
        rows += [(f"  {reason}", str(n)) for reason, n in sorted(self.upgrade_failures.items())]
        rows += [
            ("open now / peak", f"{self.open} / {self.peak_open}"),
            ("messages in / out", f"{self.messages_in} / {self.messages_out}"),
            ("pings answered", str(self.pings_answered)),
            ("close codes received", "" if self.close_codes_received else "none"),
        ]
        rows += [
            (f"  {label(code)}", str(n)) for code, n in sorted(self.close_codes_received.items())
        ]
        rows.append(("close codes sent", "" if self.close_codes_sent else "none"))
        rows += [(f"  {label(code)}", str(n)) for code, n in sorted(self.close_codes_sent.items())]
        rows += [
            (
                "TCP closed first by server / client",
                f"{self.tcp_closed_first_by_server} / {self.tcp_closed_first_by_client}",
            ),
            (
                "server-initiated closes",
                ", ".join(f"{k} {v}" for k, v in sorted(self.server_initiated.items())) or "0",
            ),
            ("close timeouts (no answer)", str(self.close_timeouts)),
            ("mute drops", str(self.mute_drops)),
            ("protocol errors", str(self.protocol_errors)),
            ("send timeouts", str(self.send_timeouts)),
            (
                "storms: run / closed / terminated",
                f"{self.storms} / {self.storm_closed} / {self.storm_terminated}",
            ),
            (
                "permessage-deflate: connections / compressed messages in",
                f"{self.deflate_connections} / {self.compressed_messages_in}",
            ),
        ]
        width = max(len(name) for name, _ in rows)
        lines = ["built-in server statistics"]
        lines += [f"  {name.ljust(width)}  {value}".rstrip() for name, value in rows]
        return "\n".join(lines)
