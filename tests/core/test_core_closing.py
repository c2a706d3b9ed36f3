"""The close state machine (transitions as data) and outcome classification, without I/O."""

from __future__ import annotations

import itertools

import pytest

from wsload.core.closing import (
    TRANSITIONS,
    CloseState,
    CloseTracker,
    HandshakeEvent,
    IllegalTransition,
    classify,
)
from wsload.core.kinds import CloseKind
from wsload.core.outcomes import DESCRIPTIONS, Outcome
from wsload.core.record import Side
from wsload.scenario.model import CLOSE_KINDS

S, E = CloseState, HandshakeEvent


def fire(t: CloseTracker, event: HandshakeEvent, now: float = 1.0) -> None:
    if event is E.SEND_CLOSE:
        t.send_close(now, 1000, "")
    elif event is E.RECEIVE_CLOSE:
        t.receive_close(now, 1000, "")
    elif event is E.RECEIVE_EOF:
        t.receive_eof(now)
    else:
        t.close_socket(now)


def tracker_in(state: CloseState) -> CloseTracker:
    path = {
        S.OPEN: [],
        S.CLOSE_SENT: [E.SEND_CLOSE],
        S.CLOSE_RECEIVED: [E.RECEIVE_CLOSE],
        S.CLOSING: [E.SEND_CLOSE, E.RECEIVE_CLOSE],
        S.PEER_GONE: [E.RECEIVE_EOF],
        S.CLOSED: [E.CLOSE_SOCKET],
    }[state]
    t = CloseTracker()
    for event in path:
        fire(t, event)
    assert t.state is state
    return t


@pytest.mark.parametrize(("state", "event"), list(itertools.product(S, E)))
def test_every_state_event_pair_is_legal_or_raises_naming_the_state(
    state: CloseState, event: HandshakeEvent
) -> None:
    t = tracker_in(state)
    expected = TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition, match=f"cannot {event} in state {state}"):
            fire(t, event, 2.0)
        assert t.state is state
    else:
        fire(t, event, 2.0)
        assert t.state is expected


def test_the_client_may_always_drop_tcp_and_nothing_follows_closed() -> None:
    assert all(TRANSITIONS[s, E.CLOSE_SOCKET] is S.CLOSED for s in S if s is not S.CLOSED)
    assert not [key for key in TRANSITIONS if key[0] is S.CLOSED]


def test_client_initiated_clean_close_stamps_and_sides() -> None:
    t = CloseTracker()
    assert t.can_send_close
    t.initiate(1.0)
    t.send_close(1.5, 1000, "bye")
    assert not t.can_send_close
    t.receive_close(2.0, 1000, "ok")
    t.receive_eof(2.5)
    t.close_socket(2.6)
    assert (t.close_initiated, t.close_sent, t.close_received, t.eof, t.socket_closed) == (
        1.0,
        1.5,
        2.0,
        2.5,
        2.6,
    )
    assert (t.code_sent, t.reason_sent, t.code_received, t.reason_received) == (
        1000,
        "bye",
        1000,
        "ok",
    )
    assert t.close_initiator is Side.CLIENT
    assert t.tcp_closed_first is Side.SERVER
    assert t.eof_state is S.CLOSING
    assert str(t) == (
        "sent 1000 (Normal Closure); then received 1000 (Normal Closure); then server closed TCP"
    )


def test_server_initiated_close_then_client_drops_tcp() -> None:
    t = CloseTracker()
    t.receive_close(3.0, None, "")
    assert t.close_initiated == 3.0
    assert t.can_send_close
    t.send_close(3.1, None, "")
    t.close_socket(4.0)
    assert t.close_initiator is Side.SERVER
    assert t.tcp_closed_first is Side.CLIENT
    assert str(t) == "received no code; then sent no code; then client closed TCP"
    assert str(CloseTracker()) == "no close (open)"


def test_initiate_keeps_the_first_stamp() -> None:
    t = CloseTracker()
    assert t.initiate(1.0) == 1.0
    assert t.initiate(2.0) == 1.0
    t.send_close(3.0, 1000, "")
    assert t.close_initiated == 1.0


def run(*steps: tuple[str, object]) -> CloseTracker:
    """Build a tracker from (event, argument) steps with increasing times."""
    t = CloseTracker()
    for now, (event, arg) in enumerate(steps, start=1):
        if event == "send":
            t.send_close(float(now), arg if isinstance(arg, int) else None, "")
        elif event == "recv":
            t.receive_close(float(now), arg if isinstance(arg, int) else None, "")
        elif event == "eof":
            t.receive_eof(float(now), reset=bool(arg))
        else:
            t.close_socket(float(now))
    return t


SEND, RECV, EOF, RST, DROP = (
    ("send", 1000),
    ("recv", 1000),
    ("eof", False),
    ("eof", True),
    (
        "drop",
        None,
    ),
)


@pytest.mark.parametrize(
    ("kind", "steps", "flags", "outcome"),
    [
        ("clean", [SEND, RECV, EOF, DROP], {}, Outcome.CLEAN),
        ("clean", [SEND, RECV, RST, DROP], {}, Outcome.RESET),
        ("clean", [SEND, DROP], {"timed_out": True}, Outcome.CLOSE_TIMEOUT),
        ("clean", [SEND, RECV, DROP], {"timed_out": True}, Outcome.CLOSE_TIMEOUT),
        ("clean", [SEND, EOF, DROP], {}, Outcome.ABNORMAL),
        ("clean", [SEND, RST, DROP], {}, Outcome.RESET),
        ("clean", [EOF, DROP], {}, Outcome.ABNORMAL),
        ("clean", [RST, DROP], {}, Outcome.RESET),
        ("clean", [("recv", 4001), ("send", 4001), EOF, DROP], {}, Outcome.SERVER_CLOSED),
        ("clean", [RECV, EOF, DROP], {}, Outcome.SERVER_CLOSED),
        ("clean", [RECV, SEND, DROP], {"timed_out": True}, Outcome.CLOSE_TIMEOUT),
        ("clean", [RECV, SEND, RST, DROP], {}, Outcome.RESET),
        ("terminate", [DROP], {}, Outcome.TERMINATED),
        ("terminate", [RECV, SEND, EOF, DROP], {}, Outcome.SERVER_CLOSED),
        ("close_no_wait", [SEND, DROP], {}, Outcome.CLOSE_NO_WAIT),
        ("await_server_close", [RECV, SEND, EOF, DROP], {}, Outcome.SERVER_CLOSED),
        ("await_server_close", [RECV, SEND, DROP], {"timed_out": True}, Outcome.CLOSE_TIMEOUT),
        ("await_server_close", [DROP], {"timed_out": True}, Outcome.NO_SERVER_CLOSE),
        (
            "await_server_close",
            [SEND, RECV, EOF, DROP],
            {"timed_out": True},
            Outcome.NO_SERVER_CLOSE,
        ),
        ("await_server_close", [EOF, DROP], {}, Outcome.ABNORMAL),
        ("await_server_close", [DROP], {"stopped": True}, Outcome.INTERRUPTED),
        ("ignore_server_close", [RECV, EOF, DROP], {}, Outcome.SERVER_DROPPED),
        ("ignore_server_close", [RECV, RST, DROP], {}, Outcome.SERVER_DROPPED),
        ("ignore_server_close", [RECV, DROP], {"timed_out": True}, Outcome.CLOSE_TIMEOUT),
        ("ignore_server_close", [DROP], {"timed_out": True}, Outcome.NO_SERVER_CLOSE),
        ("ignore_server_close", [EOF, DROP], {}, Outcome.ABNORMAL),
        (
            "invalid_close",
            [("send", 1005), ("recv", 1002), EOF, DROP],
            {},
            Outcome.INVALID_REJECTED,
        ),
        ("invalid_close", [("send", 999), ("recv", 1007), DROP], {}, Outcome.INVALID_REJECTED),
        ("invalid_close", [("send", 1005), EOF, DROP], {}, Outcome.INVALID_REJECTED),
        ("invalid_close", [("send", 1005), RST, DROP], {}, Outcome.INVALID_REJECTED),
        (
            "invalid_close",
            [("send", 1005), ("recv", 1000), EOF, DROP],
            {},
            Outcome.INVALID_ACCEPTED,
        ),
        (
            "invalid_close",
            [("send", 1005), ("recv", None), EOF, DROP],
            {},
            Outcome.INVALID_ACCEPTED,
        ),
        ("invalid_close", [("send", 1005), DROP], {"timed_out": True}, Outcome.CLOSE_TIMEOUT),
        ("invalid_close", [RECV, SEND, EOF, DROP], {}, Outcome.SERVER_CLOSED),
    ],
)
def test_classify(
    kind: str, steps: list[tuple[str, object]], flags: dict[str, bool], outcome: Outcome
) -> None:
    got, detail = classify(
        CloseKind(kind),
        run(*steps),
        timed_out=flags.get("timed_out", False),
        stopped=flags.get("stopped", False),
    )
    assert got is outcome
    assert got in DESCRIPTIONS
    if got not in (Outcome.CLEAN, Outcome.TERMINATED, Outcome.CLOSE_NO_WAIT, Outcome.SERVER_CLOSED):
        assert detail, "every non-clean outcome explains itself"


def test_invalid_answer_wins_over_the_failure_it_caused() -> None:
    """A server that echoes our reserved code broke the protocol too: that is 'accepted'."""
    t = run(("send", 1005), ("recv", 1005), DROP)
    failure = (Outcome.PROTOCOL_ERROR, "invalid Close from the server")
    assert classify(CloseKind.INVALID_CLOSE, t, failure=failure)[0] is Outcome.INVALID_ACCEPTED
    assert classify(CloseKind.CLEAN, run(SEND, ("recv", 1005), DROP), failure=failure)[0] is (
        Outcome.PROTOCOL_ERROR
    )


@pytest.mark.parametrize("kind", CLOSE_KINDS)
def test_failures_pass_through_for_every_kind(kind: str) -> None:
    for failure in (Outcome.PROTOCOL_ERROR, Outcome.MESSAGE_TIMEOUT, Outcome.TLS_ERROR):
        assert classify(CloseKind(kind), run(DROP), failure=(failure, "x")) == (failure, "x")


@pytest.mark.parametrize("kind", CLOSE_KINDS)
def test_eof_before_any_close_frame_is_abnormal_for_every_kind(kind: str) -> None:
    assert classify(CloseKind(kind), run(EOF, DROP))[0] is Outcome.ABNORMAL
    assert classify(CloseKind(kind), run(RST, DROP))[0] is Outcome.RESET
