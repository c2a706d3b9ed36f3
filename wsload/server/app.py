"""The built-in server's application mode (``[target.server] app = "pubsub"``), without I/O.

A small JSON publish/subscribe protocol, so that scripted sessions (``[[session.steps]]``) can be
tried without an external server (docs/scenarios.md, "Application mode"). Every client message
is one JSON object with an ``op``:

- ``{"op": "subscribe", "topic": T}`` → ``{"op": "subscribed", "topic": T}``, then
  ``app_pushes`` pushes ``{"op": "push", "topic": T, "n": 1..N}``, one every
  ``app_push_interval`` (the first one interval after the acknowledgement);
- ``{"op": "bye"}`` → the server closes with ``app_bye_code`` (reason ``"bye"``);
- any other op → ``{"op": "ack", "of": op}`` (``login``, ``say``, ... of a chat client);
- text that is not a JSON object with a string ``op`` → ``{"op": "error"}``.

The connection task owns the timer; this object only says what to send and when.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["AppReply", "PubSub"]


@dataclass(frozen=True, slots=True)
class AppReply:
    """What the server does about one client message.

    Attributes:
        messages: text messages to send now, in order.
        close: close the connection with this code (a ``bye``), or None.
        start_pushes: (re)start the pushes (a ``subscribe``).
    """

    messages: tuple[str, ...] = ()
    close: int | None = None
    start_pushes: bool = False


_ERROR = AppReply(('{"op":"error"}',))


class PubSub:
    """One connection's pubsub state: its topic and how many pushes are left."""

    __slots__ = ("bye_code", "pushes", "sent", "topic")

    def __init__(self, pushes: int, bye_code: int) -> None:
        self.pushes = pushes
        self.bye_code = bye_code
        self.topic: str | None = None
        self.sent = 0

    def on_message(self, text: str) -> AppReply:
        """The server's answer to one complete client message."""
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return _ERROR
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            return _ERROR
        op = message["op"]
        if op == "bye":
            return AppReply(close=self.bye_code)
        if op == "subscribe":
            topic = message.get("topic")
            self.topic = topic if isinstance(topic, str) else ""
            self.sent = 0
            ack = json.dumps({"op": "subscribed", "topic": self.topic}, separators=(",", ":"))
            return AppReply((ack,), start_pushes=self.pushes > 0)
        return AppReply((json.dumps({"op": "ack", "of": op}, separators=(",", ":")),))

    def next_push(self) -> str | None:
        """The next push, or None when all were sent (or nothing is subscribed)."""
        if self.topic is None or self.sent >= self.pushes:
            return None
        self.sent += 1
        return json.dumps(
            {"op": "push", "topic": self.topic, "n": self.sent}, separators=(",", ":")
        )
