"""The sans-IO upgrade: the request template and the strict response parser, fed bytes."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.core.faults import ProtocolViolation
from wsload.core.handshake import (
    MAX_HEADER_BYTES,
    RequestTemplate,
    ResponseParser,
    accept_key,
    host_header,
    new_key,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # ... and its accept value


def response(*headers: str, status: str = "101 Switching Protocols", version: str = "1.1") -> bytes:
    lines = [f"HTTP/{version} {status}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


GOOD = ("Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Accept: {ACCEPT}")


def test_accept_key_matches_rfc_example() -> None:
    assert accept_key(KEY).decode() == ACCEPT


def test_new_keys_are_16_random_bytes() -> None:
    keys = {new_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(base64.b64decode(k)) == 16 for k in keys)


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 443, False, "example.com:443"),
        ("127.0.0.1", 8080, False, "127.0.0.1:8080"),
        ("::1", 9000, False, "[::1]:9000"),
        ("::1", 443, True, "[::1]"),
    ],
)
def test_host_header(host: str, port: int, secure: bool, expected: str) -> None:
    assert host_header(host, port, secure) == expected


def test_request_template_renders_every_header() -> None:
    template = RequestTemplate.build(
        host="127.0.0.1:9000",
        resource="/chat?id={seq}",
        origin="https://app.example",
        subprotocols=("v2.chat", "v1.chat"),
        headers=(("Authorization", "Bearer x"), ("X-Trace", "1")),
    )
    request = template.render(KEY, 42)
    head, _, rest = request.partition(b"\r\n\r\n")
    assert rest == b""
    lines = head.split(b"\r\n")
    assert lines[0] == b"GET /chat?id=42 HTTP/1.1"
    assert set(lines[1:]) == {
        b"Host: 127.0.0.1:9000",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: 13",
        b"Origin: https://app.example",
        b"Sec-WebSocket-Protocol: v2.chat, v1.chat",
        b"Authorization: Bearer x",
        b"X-Trace: 1",
        b"Sec-WebSocket-Key: " + KEY,
    }


def test_request_template_without_seq_is_plain_concatenation() -> None:
    template = RequestTemplate.build(host="h", resource="")
    assert not template.has_seq
    assert template.render(KEY, 1).startswith(b"GET / HTTP/1.1\r\nHost: h\r\n")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resource": "/a\r\nX: y"},
        {"origin": "o\nx"},
        {"headers": (("Bad Name", "v"),)},
        {"headers": (("X", "\u20ac"),)},
    ],
)
def test_request_template_refuses_unsendable_values(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"host": "h", "resource": "/"} | kwargs
    with pytest.raises(ValueError):
        RequestTemplate.build(**args)  # type: ignore[arg-type]


def test_valid_101_with_trailing_frame_bytes() -> None:
    parser = ResponseParser(KEY)
    frame = b"\x88\x02\x03\xe8"  # a Close 1000 right behind the 101
    result = parser.feed(response(*GOOD) + frame)
    assert result is not None
    assert result.accepted
    assert result.status == 101
    assert result.trailing == frame
    assert result.subprotocol is None
    assert ("upgrade", "websocket") in result.headers


def test_fed_byte_by_byte() -> None:
    parser = ResponseParser(KEY)
    data = response(*GOOD, "Server: x")
    results = [parser.feed(data[i : i + 1]) for i in range(len(data))]
    assert all(r is None for r in results[:-1])
    final = results[-1]
    assert final is not None and final.accepted and final.trailing == b""


def test_case_insensitive_names_and_tokens() -> None:
    parser = ResponseParser(KEY)
    result = parser.feed(
        response(
            "UPGRADE: WebSocket",
            "connection: keep-alive, UPGRADE",
            f"sec-websocket-accept: {ACCEPT}",
        )
    )
    assert result is not None and result.accepted


def test_selected_subprotocol_must_have_been_offered() -> None:
    offered = ("v1", "v2")
    ok = ResponseParser(KEY, offered).feed(response(*GOOD, "Sec-WebSocket-Protocol: v2"))
    assert ok is not None and ok.subprotocol == "v2"
    with pytest.raises(ProtocolViolation, match="subprotocol") as info:
        ResponseParser(KEY, offered).feed(response(*GOOD, "Sec-WebSocket-Protocol: v3"))
    assert info.value.outcome == "handshake_invalid"
    with pytest.raises(ProtocolViolation, match="subprotocol"):
        ResponseParser(KEY).feed(response(*GOOD, "Sec-WebSocket-Protocol: v1"))


@pytest.mark.parametrize(
    ("headers", "status", "version", "match"),
    [
        (GOOD[1:], "101 Switching Protocols", "1.1", "Upgrade"),
        (("Upgrade: h2c", *GOOD[1:]), "101 Switching Protocols", "1.1", "Upgrade"),
        (("Upgrade: websocket", "Upgrade: websocket", *GOOD[1:]), "101 OK", "1.1", "Upgrade"),
        ((GOOD[0], GOOD[2]), "101 Switching Protocols", "1.1", "Connection"),
        (
            (GOOD[0], "Connection: keep-alive", GOOD[2]),
            "101 Switching Protocols",
            "1.1",
            "Connection",
        ),
        (GOOD[:2], "101 Switching Protocols", "1.1", "Accept"),
        ((*GOOD[:2], "Sec-WebSocket-Accept: AAAA"), "101 Switching Protocols", "1.1", "wrong"),
        ((*GOOD, f"Sec-WebSocket-Accept: {ACCEPT}"), "101 Switching Protocols", "1.1", "exactly"),
        ((*GOOD, "Sec-WebSocket-Extensions: permessage-deflate"), "101 OK", "1.1", "extension"),
        (GOOD, "101 Switching Protocols", "1.0", "HTTP/1.1"),
        ((*GOOD, "no colon here"), "101 OK", "1.1", "malformed"),
        ((*GOOD, " folded: value"), "101 OK", "1.1", "malformed"),
    ],
)
def test_invalid_101_responses(
    headers: tuple[str, ...], status: str, version: str, match: str
) -> None:
    with pytest.raises(ProtocolViolation, match=match) as info:
        ResponseParser(KEY).feed(response(*headers, status=status, version=version))
    assert info.value.outcome == "handshake_invalid"


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/2 101",
        b"ICY 200 OK",
        b"HTTP/1.1 1O1 x",
        b"HTTP/1.1 001",
        b"HTTP/1.1 099 x",
        b"garbage",
    ],
)
def test_bad_status_line(line: bytes) -> None:
    with pytest.raises(ProtocolViolation, match="status line"):
        ResponseParser(KEY).feed(line + b"\r\n\r\n")


@pytest.mark.parametrize(("status", "code"), [("503 Service Unavailable", 503), ("404", 404)])
def test_non_101_is_a_rejection_with_its_status(status: str, code: int) -> None:
    result = ResponseParser(KEY).feed(response("Content-Length: 0", status=status, version="1.0"))
    assert result is not None
    assert not result.accepted
    assert result.status == code


def test_oversized_header_block_without_end() -> None:
    parser = ResponseParser(KEY)
    assert parser.feed(b"HTTP/1.1 101 Switching Protocols\r\n") is None
    chunk = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    with pytest.raises(ProtocolViolation, match="exceeds") as info:
        for _ in range(MAX_HEADER_BYTES // len(chunk) + 2):
            parser.feed(chunk)
    assert info.value.outcome == "handshake_invalid"


def test_oversized_header_block_arriving_whole() -> None:
    big = response(*GOOD, "X-Filler: " + "a" * MAX_HEADER_BYTES)
    with pytest.raises(ProtocolViolation, match="exceeds"):
        ResponseParser(KEY).feed(big)


def test_header_block_at_the_limit_is_fine() -> None:
    base = response(*GOOD, "X-Filler: ")
    filler = "a" * (MAX_HEADER_BYTES - len(base))
    data = response(*GOOD, "X-Filler: " + filler)
    assert len(data) == MAX_HEADER_BYTES
    assert ResponseParser(KEY).feed(data) is not None


def test_eof_violation_counts_bytes() -> None:
    parser = ResponseParser(KEY)
    parser.feed(b"HTTP/1.1 101")
    violation = parser.eof()
    assert violation.outcome == "handshake_invalid"
    assert "after 12 response bytes" in str(violation)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans())
def test_arbitrary_server_bytes_never_crash(chunks: list[bytes], prefix: bool) -> None:
    """Any bytes: a result, None (need more), or ProtocolViolation — nothing else."""
    parser = ResponseParser(KEY, ("v1",))
    if prefix:
        chunks = [b"HTTP/1.1 101 Switching Protocols\r\n", *chunks]
    try:
        for chunk in chunks:
            result = parser.feed(chunk)
            if result is not None:
                assert 100 <= result.status <= 999
                break
    except ProtocolViolation as exc:
        assert exc.outcome == "handshake_invalid"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True),
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        ),
        max_size=6,
    ),
    st.integers(1, 40),
)
def test_valid_101_with_extra_headers_in_any_split(extra: list[tuple[str, str]], step: int) -> None:
    names = {"upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol"}
    names |= {"sec-websocket-extensions"}
    lines = [f"{n}: {v}" for n, v in extra if n.lower() not in names]
    data = response(*GOOD, *lines)
    parser = ResponseParser(KEY)
    results = [parser.feed(data[i : i + step]) for i in range(0, len(data), step)]
    assert results[-1] is not None and results[-1].accepted
    assert all(r is None for r in results[:-1])


def test_lines_parsed_before_get_the_same_answers() -> None:
    # status lines and header names seen before are answered from what their first parse
    # found: the same answers, the bad ones still refused, and past the kept number too
    for _ in range(2):
        result = ResponseParser(KEY).feed(response(*GOOD, "X-Twice: y"))
        assert result is not None and result.accepted and ("x-twice", "y") in result.headers
        with pytest.raises(ProtocolViolation, match=r"must be HTTP/1\.1"):
            ResponseParser(KEY).feed(response(*GOOD, version="1.0"))
        with pytest.raises(ProtocolViolation, match="malformed header line"):
            ResponseParser(KEY).feed(response(*GOOD, "Bad Name: y"))
        with pytest.raises(ProtocolViolation, match="status line"):
            ResponseParser(KEY).feed(b"HTTP/1.1 1O1 x\r\n\r\n")
    for i in range(600):  # more distinct lines and names than are kept
        result = ResponseParser(KEY).feed(response(f"X-{i}: v", status=f"{400 + i % 100} r{i}"))
        assert result is not None and (result.status, result.reason) == (400 + i % 100, f"r{i}")
        assert (f"x-{i}", "v") in result.headers
