"""A session script as frozen data: the steps ``[[session.steps]]`` parse into.

The engine's session is a small interpreter of these (``wsload.engine.session``); echo mode is
the built-in script :func:`echo_script`, so both take the same path. Everything here is
decided at load time (templates compiled, payloads of ``send_hex``/``send_base64``/``send_file``
decoded, regexes compiled), so running a step costs no parsing.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsload.core.capture import Capture
from wsload.core.matching import Matcher
from wsload.core.templates import Template

__all__ = [
    "MESSAGE_RTT",
    "Expect",
    "Ping",
    "Receive",
    "Repeat",
    "Rule",
    "Send",
    "Sleep",
    "Step",
    "echo_script",
    "step_metrics",
]

MESSAGE_RTT = "message_rtt"
"""The metric of echo mode's built-in expect step."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send one data message.

    Attributes:
        template: a text payload with holes (None: ``data`` is sent as it is).
        data: the fixed payload (binary, or text already encoded).
        binary: a binary frame instead of a text frame.
        pace: the next ``Send`` waits until this long after this one (echo's
            ``message_interval``; 0 in scripts, which use ``sleep``).
    """

    template: Template | None = None
    data: bytes = b""
    binary: bool = False
    pace: float = 0.0


@dataclass(frozen=True, slots=True)
class Expect:
    """Wait for a data message matching ``matcher``; others are counted as unmatched.

    Attributes:
        matcher: what to wait for.
        timeout: seconds from the step's start (or from the last send, see ``metric``).
        name: the step's name in messages (``"subscribe"``), or "" when unnamed.
        metric: the latency metric (``step.<name>``, ``message_rtt``) or "" for none; measured
            from the end of the last send before this step to the matching message.
        save: values captured from the matching message (``{var:NAME}`` later); a missing
            one fails the step.
    """

    matcher: Matcher
    timeout: float
    name: str = ""
    metric: str = ""
    save: tuple[Capture, ...] = ()


@dataclass(frozen=True, slots=True)
class Receive:
    """Take ``count`` more data messages, or take messages for ``duration`` seconds.

    Attributes:
        count: messages to wait for (None with ``duration``).
        duration: how long to take messages (None with ``count``).
        timeout: ``count`` only: the most it may take, from the step's start.
    """

    count: int | None
    duration: float | None
    timeout: float


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``min`` (or a uniform draw in ``[min, max]``) seconds, still receiving."""

    min: float
    max: float


@dataclass(frozen=True, slots=True)
class Ping:
    """Send one ping and wait for its pong (``ping_rtt``) within ``timeout``."""

    timeout: float


@dataclass(frozen=True, slots=True)
class Repeat:
    """Run ``steps`` ``times`` times, or again and again until ``duration`` has passed."""

    steps: tuple[Step, ...]
    times: int | None = None
    duration: float | None = None


Step = Send | Expect | Receive | Sleep | Ping | Repeat


@dataclass(frozen=True, slots=True)
class Rule:
    """A ``[[session.on]]`` reply rule: a data message it matches is answered at once.

    Active from the upgrade to the end of the connection (steps, holds, close waits); rules
    are tried in order and the first match takes the message (it is not offered to steps).

    Attributes:
        matcher: which messages (any ``expect`` matcher).
        send: the reply's payload template (None: no data reply).
        binary: the reply is a binary frame.
        ping: also send a WebSocket ping (its pong is not awaited).
        close: send a Close ``(code, reason)`` and start the close (None: no Close).
        save: values captured from the message, as an ``expect``'s ``save``; a missing one
            leaves the variable as it was.
    """

    matcher: Matcher
    send: Template | None = None
    binary: bool = False
    ping: bool = False
    close: tuple[int, str] | None = None
    save: tuple[Capture, ...] = ()


def echo_script(
    payload: bytes,
    *,
    binary: bool,
    messages: int,
    interval: float,
    await_echo: bool,
    timeout: float,
) -> tuple[Step, ...]:
    """Echo mode (``messages``, ``message_size``, ``await_echo`` ...) as a script.

    Each message is sent ``interval`` after the previous send and, with ``await_echo``, its
    echo is awaited as an ``any`` match whose latency is ``message_rtt``.
    """
    if messages <= 0:
        return ()
    steps: list[Step] = [Send(data=payload, binary=binary, pace=interval)]
    if await_echo:
        steps.append(Expect(Matcher.build("any"), timeout, "echo", MESSAGE_RTT))
    if messages == 1:
        return tuple(steps)
    return (Repeat(tuple(steps), times=messages),)


def step_metrics(steps: tuple[Step, ...]) -> tuple[str, ...]:
    """The ``step.<name>`` metrics a script records, in order of first appearance."""
    out: list[str] = []
    for step in steps:
        if isinstance(step, Repeat):
            out.extend(m for m in step_metrics(step.steps) if m not in out)
        elif (
            isinstance(step, Expect) and step.metric.startswith("step.") and step.metric not in out
        ):
            out.append(step.metric)
    return tuple(out)
