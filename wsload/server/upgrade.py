"""The server half of the RFC 6455 §4.2 opening handshake, without I/O.

Why hand-written: the built-in server must stay cheap per connection so that the load generator
on the other core is never limited by it, and a general HTTP parser (h11, or wsproto's
handshake layer built on it) costs more per connection than the whole rest of the upgrade.
The request head is parsed strictly, because the server is also used to rehearse clients: a
client that sends a broken upgrade should learn it here (400 / 426), not in production.

Only the head is parsed; bytes the client sent behind it (frames pipelined after the request)
are returned by :func:`split_head` for the frame layer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from http import HTTPStatus

__all__ = [
    "MAX_HEAD_BYTES",
    "BadUpgrade",
    "UpgradeRequest",
    "accept_key",
    "accept_response",
    "error_response",
    "parse_request",
    "reject_response",
    "split_head",
]

MAX_HEAD_BYTES = 16 * 1024
"""Largest request head accepted (request line + headers + blank line)."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_REQUEST_LINE_RE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/([0-9])\.([0-9])")
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_END = b"\r\n\r\n"
_SINGLE = ("host", "sec-websocket-key", "sec-websocket-version")


class BadUpgrade(Exception):
    """The request is not a valid WebSocket upgrade.

    Attributes:
        status: the HTTP status to answer with (400, or 426 for a wrong Sec-WebSocket-Version).
        reason: a short machine-friendly label counted in the server statistics.
    """

    def __init__(self, message: str, *, status: int = 400, reason: str = "bad_request") -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """A validated upgrade request.

    Attributes:
        target: the request target (``/path?query``).
        key: the Sec-WebSocket-Key value as sent (base64 of 16 bytes).
        subprotocols: the offered subprotocols, in the client's order.
        headers: every header, names lower-cased, repeated ones joined with ``", "``.
    """

    target: str
    key: bytes
    subprotocols: tuple[str, ...]
    headers: dict[str, str]


def split_head(buffer: bytes | bytearray) -> tuple[bytes, bytes] | None:
    """``(head, rest)`` once ``buffer`` holds a whole request head, else None.

    Raises:
        BadUpgrade: the head is longer than :data:`MAX_HEAD_BYTES` (status 431).
    """
    end = buffer.find(_END)
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise BadUpgrade(
                f"request head over {MAX_HEAD_BYTES} bytes", status=431, reason="too_large"
            )
        return None
    end += len(_END)
    if end > MAX_HEAD_BYTES:
        raise BadUpgrade(
            f"request head over {MAX_HEAD_BYTES} bytes", status=431, reason="too_large"
        )
    return bytes(buffer[:end]), bytes(buffer[end:])


def _tokens(value: str) -> set[str]:
    """The comma-separated tokens of a list header, lower-cased (RFC 9110 §5.6.1)."""
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def parse_request(head: bytes) -> UpgradeRequest:
    """Validate a request head (through its blank line) as RFC 6455 §4.2.1 asks.

    Checks: ``GET``, HTTP/1.1 or later, a Host, ``Upgrade: websocket``, ``Connection``
    containing ``upgrade``, a Sec-WebSocket-Key that is base64 of 16 bytes and
    ``Sec-WebSocket-Version: 13``.

    Raises:
        BadUpgrade: with the status to answer (426 for an unsupported version, else 400).
    """
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadUpgrade("undecodable request head") from None
    lines = text.split("\r\n")
    if len(lines) < 3 or lines[-1] != "" or lines[-2] != "":
        raise BadUpgrade("request head does not end with an empty line")
    match = _REQUEST_LINE_RE.fullmatch(lines[0])
    if match is None:
        raise BadUpgrade(f"malformed request line {lines[0][:80]!r}")
    method, target, major, minor = match.groups()
    if method != "GET":
        raise BadUpgrade(f"method must be GET, got {method[:20]!r}", reason="bad_method")
    if (int(major), int(minor)) < (1, 1):
        raise BadUpgrade(f"HTTP/{major}.{minor} cannot upgrade", reason="bad_http_version")
    headers: dict[str, str] = {}
    for line in lines[1:-2]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise BadUpgrade(f"malformed header line {line[:80]!r}")
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            if key in _SINGLE:
                raise BadUpgrade(f"repeated {name} header")
            headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
    if not headers.get("host"):
        raise BadUpgrade("no Host header", reason="no_host")
    if "websocket" not in _tokens(headers.get("upgrade", "")):
        raise BadUpgrade("Upgrade header does not name websocket", reason="no_upgrade")
    if "upgrade" not in _tokens(headers.get("connection", "")):
        raise BadUpgrade("Connection header does not contain upgrade", reason="no_upgrade")
    version = headers.get("sec-websocket-version", "")
    if version != "13":
        raise BadUpgrade(
            f"Sec-WebSocket-Version must be 13, got {version[:20]!r}",
            status=426,
            reason="bad_version",
        )
    raw_key = headers.get("sec-websocket-key", "")
    try:
        decoded = base64.b64decode(raw_key, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 16:
        raise BadUpgrade("Sec-WebSocket-Key is not base64 of 16 bytes", reason="bad_key")
    offered = tuple(
        part.strip()
        for part in headers.get("sec-websocket-protocol", "").split(",")
        if part.strip()
    )
    return UpgradeRequest(
        target=target, key=raw_key.encode("ascii"), subprotocols=offered, headers=headers
    )


def accept_key(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept answering ``key`` (RFC 6455 §4.2.2 step 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def accept_response(request: UpgradeRequest, extensions: str | None = None) -> bytes:
    """The 101 response; it selects the first offered subprotocol, if any.

    Selecting instead of ignoring the offer lets users point clients that insist on a
    subprotocol at the built-in server unchanged. ``extensions``: the accepted
    Sec-WebSocket-Extensions value (permessage-deflate), if any.
    """
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept_key(request.key),
    ]
    if request.subprotocols:
        lines.append(b"Sec-WebSocket-Protocol: " + request.subprotocols[0].encode("latin-1"))
    if extensions is not None:
        lines.append(b"Sec-WebSocket-Extensions: " + extensions.encode("latin-1"))
    return b"\r\n".join(lines) + _END


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Rejected"
    return f"HTTP/1.1 {status} {phrase}".encode("ascii")


def reject_response(status: int) -> bytes:
    """A deliberate rejection (``reject_share``): ``status`` with an empty body, then close."""
    return _status_line(status) + b"\r\nContent-Length: 0\r\nConnection: close" + _END


def error_response(error: BadUpgrade) -> bytes:
    """The answer to an invalid request; the message goes in a text body to help debugging."""
    body = (str(error) + "\n").encode("latin-1", "replace")
    extra = b"\r\nSec-WebSocket-Version: 13" if error.status == 426 else b""
    return (
        _status_line(error.status)
        + extra
        + b"\r\nContent-Type: text/plain; charset=iso-8859-1"
        + b"\r\nContent-Length: "
        + str(len(body)).encode("ascii")
        + b"\r\nConnection: close"
        + _END
        + body
    )
