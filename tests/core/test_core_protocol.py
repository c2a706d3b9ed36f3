"""The client protocol object without I/O: server bytes in, replies and recorded events out."""

from __future__ import annotations

import math
import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from peers import server_frame
from wsproto.extensions import PerMessageDeflate

from wsload.core.capture import Capture
from wsload.core.closing import CloseState
from wsload.core.frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, FrameReader
from wsload.core.matching import Matcher
from wsload.core.outcomes import Outcome
from wsload.core.protocol import ClientProtocol
from wsload.core.record import Side
from wsload.core.script import Rule
from wsload.core.templates import Template


def _unmask(frame: bytes) -> tuple[int, bytes, int]:
    """``(opcode, payload, first byte)`` of one masked client frame with a 7-bit length."""
    length = frame[1] & 0x7F
    key = frame[2:6]
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(frame[6 : 6 + length]))
    return frame[0] & 0x0F, payload, frame[0]


def _protocol(**kwargs: object) -> ClientProtocol:
    return ClientProtocol(FrameReader(1 << 20), **kwargs)  # type: ignore[arg-type]


def _close_of(frame: bytes) -> int | None:
    """The code of one masked client Close frame (None: an empty Close)."""
    opcode, payload, _ = _unmask(frame)
    assert opcode == OP_CLOSE
    return struct.unpack("!H", payload[:2])[0] if payload else None


def _server_close(code: int, reason: bytes = b"") -> bytes:
    return server_frame(OP_CLOSE, struct.pack("!H", code) + reason)


def test_ping_is_answered_with_its_payload_while_open() -> None:
    p = _protocol()
    out = p.receive_data(server_frame(0x9, b"abc"), 1.0)
    assert _unmask(out)[:2] == (OP_PONG, b"abc")
    assert p.messages_received == 0


def test_awaited_match_is_recorded_and_other_messages_are_pushes() -> None:
    p = _protocol()
    p.expecting = Matcher.build("json", {"op": "ack"})
    data = server_frame(0x1, b'{"op":"push"}') + server_frame(0x1, b'{"op":"ack","n":1}')
    assert p.receive_data(data, 2.0) == b""
    assert (p.matched_at, p.expecting) == (2.0, None)
    assert (p.messages_received, p.messages_unmatched, p.bytes_received) == (2, 1, 31)
    p.receive_data(server_frame(0x1, b"a"), 2.5)
    p.receive_data(server_frame(0x2, b"bc"), 4.0)
    assert p.push_intervals == [0.5, 1.5]  # the match is not a push


def test_reflection_reassembles_fragments_and_counts_as_sent() -> None:
    p = _protocol(reflect=True)
    data = server_frame(0x1, "hé".encode(), fin=False) + server_frame(0x0, b"llo")
    out = p.receive_data(data, 1.0)
    assert _unmask(out)[:2] == (OP_TEXT, "héllo".encode())
    assert (p.messages_sent, p.bytes_sent, p.bytes_received) == (1, 6, 6)


def test_no_reflection_once_the_server_closed() -> None:
    p = _protocol(reflect=True)
    out = p.receive_data(server_frame(0x8, struct.pack("!H", 4000)) + server_frame(0x1, b"x"), 1.0)
    assert out == b""
    assert p.tracker.state is CloseState.CLOSE_RECEIVED
    assert p.tracker.code_received == 4000


def test_protocol_error_fails_with_a_close_of_its_code_and_first_failure_wins() -> None:
    p = _protocol()
    out = p.receive_data(bytes((0x81 | 0x40, 1)) + b"x", 1.0)  # RSV1 without an extension
    assert p.failure is not None and p.failure[0] is Outcome.PROTOCOL_ERROR
    assert _close_of(out) == 1002
    assert (p.tracker.state, p.tracker.close_sent, p.tracker.code_sent) == (
        CloseState.CLOSE_SENT,
        1.0,
        1002,
    )
    assert p.ended and p.close_expected() and not p.can_send_close
    assert p.fail(Outcome.MESSAGE_TIMEOUT, "later") is None
    assert p.failure[0] is Outcome.PROTOCOL_ERROR


def test_encoder_hook_sets_rsv1_and_transforms_the_payload() -> None:
    p = _protocol(encoder=lambda payload: (payload[::-1], True))
    opcode, payload, first = _unmask(p.message(b"abc", binary=True))
    assert (opcode, payload, first & 0x40) == (OP_BINARY, b"cba", 0x40)
    assert (p.messages_sent, p.bytes_sent) == (1, 3)  # counted before the transform


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["any", "json", "regex", "equals"]))
def test_arbitrary_bytes_never_raise(data: bytes, kind: str) -> None:
    p = _protocol(reflect=True)
    value = {"json": {"a": 1}, "regex": "a+", "equals": "x", "any": None}[kind]
    p.expecting = Matcher.build(kind, value)  # type: ignore[arg-type]
    for cut in (len(data) // 3, len(data)):
        p.receive_data(data[:cut], 1.0)
    assert p.messages_received >= p.messages_unmatched


def test_a_negotiated_extension_decompresses_through_the_reader() -> None:
    """The hook permessage-deflate plugs into: wsproto extensions given to the FrameReader see
    every RSV1 frame (the fast path leaves them alone); sizes count the inflated payload."""
    pmd = PerMessageDeflate()
    pmd.finalize("permessage-deflate")
    deflate = zlib.compressobj(wbits=-15)
    body = (deflate.compress(b"hello " * 20) + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
    p = ClientProtocol(FrameReader(1 << 20, [pmd]), reflect=True)
    out = p.receive_data(bytes((0x80 | 0x40 | OP_TEXT, len(body))) + body, 1.0)
    assert (p.messages_received, p.bytes_received, p.failure) == (1, 120, None)
    assert len(out) == 2 + 4 + 120 and out[0] & 0x0F == OP_TEXT  # reflected, uncompressed


# -- every close rule, bytes and times in, bytes and state out ---------------------------------


def test_send_close_builds_the_frame_and_records_it_in_one_call() -> None:
    p = _protocol()
    assert p.start_close(1.0) == 1.0
    frame = p.send_close(4000, "bye", 1.5)
    assert _unmask(frame)[:2] == (OP_CLOSE, struct.pack("!H", 4000) + b"bye")
    t = p.tracker
    assert (t.state, t.close_initiated, t.close_sent, t.code_sent, t.reason_sent) == (
        CloseState.CLOSE_SENT,
        1.0,
        1.5,
        4000,
        "bye",
    )
    assert t.close_initiator is Side.CLIENT
    assert p.close_expected() and not p.can_send_close


def test_an_empty_close_has_no_code_and_no_reason() -> None:
    p = _protocol()
    assert _close_of(p.send_close(None, "ignored", 2.0)) is None
    assert (p.tracker.code_sent, p.tracker.reason_sent, p.tracker.close_initiated) == (
        None,
        "",
        2.0,
    )


def test_an_unwritten_close_is_taken_back() -> None:
    p = _protocol()
    p.send_close(1000, "", 1.0)
    p.close_unwritten()
    t = p.tracker
    assert (t.state, t.close_sent, t.code_sent, t.close_initiator) == (
        CloseState.OPEN,
        None,
        None,
        None,
    )
    assert t.close_initiated == 1.0  # the close did start
    p.receive_data(_server_close(1001), 2.0)  # the server's Close, then our answer fails
    p.send_close(1001, "", 2.1)
    p.close_unwritten()
    assert (t.state, t.close_initiator) == (CloseState.CLOSE_RECEIVED, Side.SERVER)


def test_invalid_close_is_recorded_with_what_went_on_the_wire() -> None:
    p = _protocol()
    frame = p.send_invalid_close("code_1005", 3.0)
    assert _close_of(frame) == 1005
    assert (p.tracker.code_sent, p.tracker.close_sent) == (1005, 3.0)
    p = _protocol()
    frame = p.send_invalid_close("one_byte", 3.0)
    assert _unmask(frame)[1] == b"\x03"
    assert (p.tracker.code_sent, p.tracker.reason_sent) == (None, None)


def test_the_servers_close_is_answered_with_its_own_code_once() -> None:
    p = _protocol()
    assert p.answer_close(1.0) is None  # nothing to answer yet
    p.receive_data(_server_close(4002, b"maintenance"), 2.0)
    assert p.close_expected() and p.can_send_close
    answer = p.answer_close(2.5)
    assert answer is not None and _close_of(answer) == 4002
    t = p.tracker
    assert (t.state, t.close_received, t.close_sent, t.close_initiator) == (
        CloseState.CLOSING,
        2.0,
        2.5,
        Side.SERVER,
    )
    assert p.answer_close(3.0) is None  # one answer only


def test_an_empty_server_close_is_answered_with_an_empty_close() -> None:
    p = _protocol()
    p.receive_data(server_frame(OP_CLOSE), 1.0)
    answer = p.answer_close(1.0)
    assert answer is not None and _close_of(answer) is None


def test_no_close_answer_after_the_eof_or_a_broken_write() -> None:
    p = _protocol()
    p.receive_data(_server_close(1000), 1.0)
    p.receive_eof(1.5)
    assert p.answer_close(2.0) is None and p.ended
    p = _protocol()
    p.receive_data(_server_close(1000), 1.0)
    p.write_failed()
    assert p.answer_close(2.0) is None
    assert p.fail(Outcome.PROTOCOL_ERROR, "x", 1002, 2.0) is None  # failed, but no Close


def test_an_invalid_server_close_fails_with_its_code_and_answers_once() -> None:
    p = _protocol()
    out = p.receive_data(_server_close(1005), 1.0)  # 1005 may never be sent
    assert p.failure is not None and p.failure[0] is Outcome.PROTOCOL_ERROR
    assert _close_of(out) == 1002
    assert p.tracker.code_received == 1005 and p.tracker.state is CloseState.CLOSING


def test_fail_without_a_code_writes_nothing() -> None:
    p = _protocol()
    assert p.fail(Outcome.MESSAGE_TIMEOUT, "no echo within 1s") is None
    assert p.failure == (Outcome.MESSAGE_TIMEOUT, "no echo within 1s")
    assert p.tracker.state is CloseState.OPEN and p.close_expected() and p.ended


def test_eof_is_recorded_once_with_the_state_it_came_in() -> None:
    p = _protocol()
    p.send_close(1000, "", 1.0)
    p.receive_eof(2.0)
    p.receive_eof(3.0, reset=True)  # a later reset of the same socket: the first report stands
    t = p.tracker
    assert (t.eof, t.reset, t.eof_state, t.tcp_closed_first) == (
        2.0,
        False,
        CloseState.CLOSE_SENT,
        Side.SERVER,
    )


def test_a_lost_connection_is_a_reset_or_a_tls_failure() -> None:
    p = _protocol()
    p.connection_lost(1.0)
    assert (p.tracker.eof, p.tracker.reset, p.write_broken) == (1.0, True, True)
    assert p.failure is None
    p = _protocol()
    p.connection_lost(1.0, "bad record mac")
    assert p.failure == (Outcome.TLS_ERROR, "TLS failed after the upgrade: bad record mac")
    assert p.tracker.eof is None and not p.can_send_close


def test_socket_closed_ends_the_tracker_once() -> None:
    p = _protocol()
    p.socket_closed(1.0)
    p.socket_closed(2.0)
    assert (p.tracker.state, p.tracker.socket_closed) == (CloseState.CLOSED, 1.0)
    assert p.tracker.tcp_closed_first is Side.CLIENT


def test_pings_are_matched_with_their_pongs() -> None:
    p = _protocol()
    frame, key = p.ping(1.0, 5.0)
    assert _unmask(frame)[:2] == (OP_PING, key)
    _, other = p.ping(1.5, 1.0)
    assert p.pong_due() == 2.5
    p.receive_data(server_frame(OP_PONG, b"unsolicited") + server_frame(OP_PONG, key), 1.25)
    assert p.ping_rtts == [0.25] and key not in p.pings and other in p.pings
    assert p.pong_due() == 2.5
    p.receive_data(server_frame(OP_PONG, other), 2.0)
    assert p.ping_rtts == [0.25, 0.5] and p.pong_due() == math.inf


def test_no_pong_once_a_close_went_out() -> None:
    p = _protocol()
    p.send_close(1000, "", 1.0)
    assert p.receive_data(server_frame(OP_PING, b"late"), 1.5) == b""


def test_expect_and_take_match() -> None:
    p = _protocol()
    p.expect(Matcher.build("equals", "ok"))
    p.receive_data(server_frame(OP_TEXT, b"no") + server_frame(OP_TEXT, b"ok"), 4.0)
    assert (p.matched, p.take_match(), p.expecting, p.messages_unmatched) == ("ok", 4.0, None, 1)
    assert p.take_match() is None
    p.expect(Matcher.build("equals", "never"))
    p.receive_data(server_frame(OP_TEXT, b"ok"), 5.0)
    assert p.take_match() is None and p.expecting is None


def test_a_phase_end_followed_by_more_bytes_in_its_read_counts_as_a_late_stamp() -> None:
    """A read's kernel stamp is the arrival of its last bytes: exact for the frame that ends
    the read, only an upper bound for one that more bytes followed (a later segment)."""
    p = _protocol()
    p.expect(Matcher.build("equals", "echo"))
    p.receive_data(server_frame(OP_TEXT, b"echo"), 1.0)
    assert (p.take_match(), p.late_stamps) == (1.0, 0)  # ended its read: exact
    p.expect(Matcher.build("equals", "echo"))
    p.receive_data(server_frame(OP_TEXT, b"echo") + server_frame(OP_TEXT, b"push"), 2.0)
    assert (p.take_match(), p.late_stamps) == (2.0, 1)  # the push came after it
    p.expect(Matcher.build("equals", "whole"))
    p.receive_data(server_frame(OP_TEXT, b"whole")[:3], 3.0)  # a frame's start: no phase end
    p.receive_data(server_frame(OP_TEXT, b"whole")[3:] + server_frame(OP_PING, b"p")[:1], 4.0)
    assert (p.take_match(), p.late_stamps) == (4.0, 2)  # a part of the next frame followed
    _, key = p.ping(5.0, 9.0)
    p.receive_data(server_frame(OP_PING, b"p")[1:] + server_frame(OP_PONG, key), 6.0)
    assert (p.ping_rtts, p.late_stamps) == ([1.0], 2)  # the pong ended the read
    p.receive_data(_server_close(1000) + b"junk after the Close", 7.0)
    assert (p.tracker.close_received, p.late_stamps) == (7.0, 3)


def test_pushes_kept_for_a_later_step_count_their_late_stamps_too() -> None:
    p = _protocol(inbox_size=4)
    p.receive_data(_texts(b"a", b"b"), 1.0)
    assert p.late_stamps == 1  # "a" (its stamp is "b"'s arrival); "b" ended the read
    assert FrameReader(1 << 20).more is False


# -- the inbox, reply rules, captures -----------------------------------------------------------


def _texts(*texts: bytes) -> bytes:
    return b"".join(server_frame(OP_TEXT, t) for t in texts)


def _client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The masked client frames (7-bit lengths) written back, one after another."""
    out = []
    while data:
        size = 6 + (data[1] & 0x7F)
        out.append(_unmask(data[:size])[:2])
        data = data[size:]
    return out


def test_the_inbox_keeps_pushes_in_order_for_the_next_expect_and_receive() -> None:
    p = _protocol(inbox_size=3)
    p.receive_data(_texts(b"a", b"b", b"hello", b"c"), 1.0)  # no step waiting: all kept
    p.receive_data(_texts(b"d"), 2.0)  # a full inbox drops its oldest
    assert [m for m, _ in p.inbox] == ["hello", "c", "d"] and p.inbox_overflow == 2
    p.expect(Matcher.build("equals", "c"))  # read from the inbox at once, "hello" skipped
    assert (p.take_match(), p.matched, p.messages_unmatched) == (1.0, "c", 1)
    assert p.take_inbox(5) == 1 and not p.inbox
    p.close_inbox()
    p.receive_data(_texts(b"late"), 3.0)
    assert not p.inbox  # the script is over: nothing kept
    assert p.messages_received == 6 and len(p.push_intervals) == 5  # pushes all the same


def test_echo_mode_keeps_no_inbox() -> None:
    p = _protocol()
    p.receive_data(_texts(b"banner"), 1.0)
    p.expect(Matcher.build("any"))
    assert p.take_match() is None and not p.inbox  # the echo, not the banner, is awaited


def test_rules_take_and_answer_first_match_wins_and_capture() -> None:
    rules = (
        Rule(Matcher.build("equals", "2"), send=Template.compile("3{var:sid}")),
        Rule(Matcher.build("regex", "^0"), save=(Capture.build("sid", 'regex:"sid":"(\\w+)"'),)),
        Rule(Matcher.build("any"), send=Template.compile("never")),
        Rule(Matcher.build("equals", "bye"), close=(4000, "ok")),
    )
    p = _protocol(rules=rules, inbox_size=8)
    p.expect(Matcher.build("any"))
    out = p.receive_data(_texts(b'0{"sid":"XY"}', b"2"), 1.0)
    assert p.variables == {"sid": "XY"} and p.messages_auto_replied == 2
    assert p.take_match() is None and not p.inbox  # a rule's message is not offered to steps
    assert _client_frames(out) == [(OP_TEXT, b"3XY")]  # the open packet: saved, no reply
    assert p.messages_sent == 1


def test_a_rule_can_close_and_captured_values_are_redacted_from_failures() -> None:
    p = _protocol(rules=(Rule(Matcher.build("equals", "bye"), close=(4000, "ok")),))
    out = p.receive_data(_texts(b"bye"), 2.0)
    assert _client_frames(out) == [(OP_CLOSE, struct.pack("!H", 4000) + b"ok")]
    assert p.tracker.code_sent == 4000 and p.tracker.close_initiated == 2.0
    q = _protocol()
    q.variables["token"] = "s3cr3t-token"
    q.variables["n"] = "1"
    q.fail(Outcome.MESSAGE_TIMEOUT, "got s3cr3t-token within 1s")
    assert q.failure == (Outcome.MESSAGE_TIMEOUT, "got REDACTED within 1s")
