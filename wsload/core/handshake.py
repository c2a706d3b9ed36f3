"""The client half of the RFC 6455 §4 opening handshake, without I/O.

Why hand-written: a general HTTP parser (h11) costs more per connection than the whole rest of
the upgrade, and wsload's hot path is "many short connections". The request is a per-run
template with two holes (``{seq}`` and the key); the response parser is strict, because a load
tester that tolerates a broken upgrade would hide exactly the server bugs it is run to find.

Every malformed response raises :class:`~wsload.core.faults.ProtocolViolation` with outcome
``handshake_invalid``; a well-formed non-101 response is returned (the driver records it as
``handshake_rejected`` with its status). Bytes after the header block (a frame the server sent
right behind its 101) are kept in :attr:`UpgradeResponse.trailing` for the frame layer.
"""

from __future__ import annotations

import hashlib
import re
from binascii import b2a_base64
from dataclasses import dataclass

from wsload.core.deflate import DeflateParams, DeflateSettings, negotiate
from wsload.core.entropy import random_bytes
from wsload.core.faults import ProtocolViolation
from wsload.core.outcomes import Outcome

__all__ = [
    "MAX_HEADER_BYTES",
    "RequestTemplate",
    "ResponseParser",
    "UpgradeResponse",
    "accept_key",
    "host_header",
    "new_key",
]

MAX_HEADER_BYTES = 16 * 1024
"""Largest response header block accepted; a server streaming headers forever is broken."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SEQ = b"{seq}"
_DATA_RE = re.compile(rb"\{data:[^{}]*\}")
_STATUS_RE = re.compile(r"HTTP/1\.([01]) ([1-9][0-9]{2})(?: (.*))?")  # RFC 9110 §15: 100-999
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_INVALID = Outcome.HANDSHAKE_INVALID
_KNOWN_MAX = 256
_known_status: dict[str, tuple[str, int, str]] = {}
"""Status lines already parsed → (HTTP minor version, status, reason): a target sends the same
line to every connection, and its regex match cost more than the rest of a response's parse
(issue 27's callgrind). At most ``_KNOWN_MAX`` lines are kept; later ones are matched each time."""
_known_names: set[str] = set()
"""Header names already found to be tokens (``_TOKEN_RE``), for the same reason."""


def new_key() -> bytes:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1).

    ``base64.b64encode`` is this same C call behind an interpreted one (two per connection).
    """
    return b2a_base64(random_bytes(16), newline=False)


def accept_key(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept a server must answer to ``key`` (RFC 6455 §4.2.2)."""
    return b2a_base64(hashlib.sha1(key + _GUID).digest(), newline=False)


def host_header(host: str, port: int, secure: bool) -> str:
    """The Host header value: the port only when not the scheme's default, IPv6 bracketed."""
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    default = 443 if secure else 80
    return name if port == default else f"{name}:{port}"


def _check_field(what: str, value: str) -> bytes:
    """Header text as bytes; CR/LF/NUL would let a value inject headers, so they are refused."""
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"{what} contains a line break or NUL: {value!r}")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not ISO-8859-1 text: {value!r}") from None


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """The upgrade request as constant bytes around the per-connection key.

    Built once per run; :meth:`render` is two concatenations (plus a replace when the resource
    contains ``{seq}``), which keeps request building off the per-connection profile.

    Attributes:
        head: everything up to the Sec-WebSocket-Key value.
        tail: everything after it, through the blank line.
        has_seq: ``head`` contains ``{seq}`` (expanded per connection).
        data: the ``{data:COLUMN}`` holes in ``head`` with their column's index in the
            connection's ``[data]`` row (filled per connection).
    """

    head: bytes
    tail: bytes
    has_seq: bool
    data: tuple[tuple[bytes, int], ...] = ()

    @classmethod
    def build(
        cls,
        *,
        host: str,
        resource: str,
        origin: str | None = None,
        subprotocols: tuple[str, ...] = (),
        headers: tuple[tuple[str, str], ...] = (),
        extensions: str | None = None,
        columns: tuple[str, ...] = (),
    ) -> RequestTemplate:
        """Build the template.

        Args:
            host: the Host header value (see :func:`host_header`).
            resource: path and query, e.g. ``/chat?id={seq}``.
            origin: an Origin header, if any.
            subprotocols: offered in Sec-WebSocket-Protocol, in preference order.
            headers: user headers, sent as given after the protocol's own.
            extensions: a Sec-WebSocket-Extensions offer (``DeflateSettings.offer()``).
            columns: the ``[data]`` file's columns (``{data:COLUMN}`` holes name them).

        Raises:
            ValueError: a value that cannot be put on the wire (line break, non-Latin-1), or
                a ``{data:COLUMN}`` naming no column.
        """
        lines = [
            b"GET " + _check_field("resource", resource or "/") + b" HTTP/1.1",
            b"Host: " + _check_field("host", host),
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Version: 13",
        ]
        if origin is not None:
            lines.append(b"Origin: " + _check_field("origin", origin))
        if subprotocols:
            offered = ", ".join(subprotocols)
            lines.append(b"Sec-WebSocket-Protocol: " + _check_field("subprotocols", offered))
        if extensions is not None:
            lines.append(b"Sec-WebSocket-Extensions: " + _check_field("extensions", extensions))
        for name, value in headers:
            if not _TOKEN_RE.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            lines.append(name.encode("ascii") + b": " + _check_field(f"header {name}", value))
        head = b"\r\n".join(lines) + b"\r\nSec-WebSocket-Key: "
        data = []
        for hole in dict.fromkeys(_DATA_RE.findall(head)):
            name = hole[6:-1].decode("latin-1")
            if name not in columns:
                raise ValueError(f"{{data:{name}}} names no column of the [data] file")
            data.append((hole, columns.index(name)))
        return cls(head=head, tail=b"\r\n\r\n", has_seq=_SEQ in head, data=tuple(data))

    def render(self, key: bytes, seq: int, row: tuple[str, ...] = ()) -> bytes:
        """The request bytes for connection ``seq`` with Sec-WebSocket-Key ``key`` (``row``:
        its ``[data]`` row, when the request has ``{data:COLUMN}`` holes)."""
        head = self.head
        if self.has_seq:
            head = head.replace(_SEQ, str(seq).encode("ascii"))
        for hole, index in self.data:
            head = head.replace(hole, row[index].encode("latin-1"))
        return head + key + self.tail


@dataclass(frozen=True, slots=True, init=False)
class UpgradeResponse:
    """A complete, well-formed response head.

    Attributes:
        status: the HTTP status (101 when the upgrade succeeded).
        reason: the status line's reason phrase.
        headers: ``(lower-case name, value)`` pairs in arrival order.
        subprotocol: the subprotocol the server selected (101 only).
        trailing: bytes that followed the header block (frames for the frame layer).
        deflate: the permessage-deflate parameters agreed (None: not offered or declined).
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    subprotocol: str | None
    trailing: bytes
    deflate: DeflateParams | None = None

    def __init__(
        self,
        status: int,
        reason: str,
        headers: tuple[tuple[str, str], ...],
        subprotocol: str | None,
        trailing: bytes,
        deflate: DeflateParams | None = None,
    ) -> None:
        # written out: see wsload.core.record.ConnectionRecord.__init__
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "headers", headers)
        object.__setattr__(self, "subprotocol", subprotocol)
        object.__setattr__(self, "trailing", trailing)
        object.__setattr__(self, "deflate", deflate)

    @property
    def accepted(self) -> bool:
        """The server switched protocols (and the response passed validation)."""
        return self.status == 101


def _status_line(line: str) -> tuple[str, int, str]:
    """(HTTP minor version, status, reason) of a response's status line.

    Raises:
        ProtocolViolation: not an HTTP/1.x status line.
    """
    known = _known_status.get(line)
    if known is not None:
        return known
    match = _STATUS_RE.fullmatch(line)
    if match is None:
        raise ProtocolViolation(f"not an HTTP/1.x status line: {line[:80]!r}", _INVALID)
    known = (match.group(1), int(match.group(2)), match.group(3) or "")
    if len(_known_status) < _KNOWN_MAX:
        _known_status[line] = known
    return known


def _is_token(name: str) -> bool:
    """Whether a header name is an RFC 9110 token."""
    if name in _known_names:
        return True
    if _TOKEN_RE.fullmatch(name) is None:
        return False
    if len(_known_names) < _KNOWN_MAX:
        _known_names.add(name)
    return True


class ResponseParser:
    """Incremental, strict parser for the server's upgrade response.

    Feed it what the socket returns; it answers ``None`` until the header block is complete.
    """

    __slots__ = ("_buf", "_deflate", "_expected_accept", "_limit", "_offered", "_scanned")

    def __init__(
        self,
        key: bytes,
        offered: tuple[str, ...] = (),
        limit: int = MAX_HEADER_BYTES,
        deflate: DeflateSettings | None = None,
    ) -> None:
        """Args:
        key: the Sec-WebSocket-Key sent (the accept value is derived from it).
        offered: the subprotocols we offered; the server may select only one of these.
        limit: the largest header block accepted, in bytes.
        deflate: the permessage-deflate offer made (None: no extension offered).
        """
        self._buf = bytearray()
        self._expected_accept = accept_key(key).decode("ascii")
        self._offered = offered
        self._deflate = deflate
        self._limit = limit
        self._scanned = 0

    @property
    def received(self) -> int:
        """Bytes buffered so far (for "closed after N bytes" details)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> UpgradeResponse | None:
        """Add received bytes; return the response once its header block is complete.

        Raises:
            ProtocolViolation: (outcome ``handshake_invalid``) the head is malformed, too large,
                or a 101 that breaks RFC 6455 §4.2.2.
        """
        buf = self._buf
        buf += data
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buf)
            if len(buf) > self._limit:
                raise ProtocolViolation(
                    f"response header block exceeds {self._limit} bytes", _INVALID
                )
            return None
        if end + 4 > self._limit:
            raise ProtocolViolation(f"response header block exceeds {self._limit} bytes", _INVALID)
        head = buf[:end].decode("latin-1")
        return self._parse(head, bytes(buf[end + 4 :]))

    def eof(self) -> ProtocolViolation:
        """The violation to raise when TCP closes before the head was complete."""
        return ProtocolViolation(
            f"connection closed during the handshake after {len(self._buf)} response bytes",
            _INVALID,
        )

    def _parse(self, head: str, trailing: bytes) -> UpgradeResponse:
        lines = head.split("\r\n")
        minor, status, reason = _status_line(lines[0])
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not _is_token(name):
                raise ProtocolViolation(f"malformed header line {line[:80]!r}", _INVALID)
            headers.append((name.lower(), value.strip(" \t")))
        if status != 101:
            return UpgradeResponse(status, reason, tuple(headers), None, trailing)
        if minor != "1":
            raise ProtocolViolation("101 response must be HTTP/1.1", _INVALID)
        subprotocol, deflate = self._validate(headers)
        return UpgradeResponse(status, reason, tuple(headers), subprotocol, trailing, deflate)

    def _validate(self, headers: list[tuple[str, str]]) -> tuple[str | None, DeflateParams | None]:
        """RFC 6455 §4.1 (client requirements for the server's 101): the subprotocol and the
        permessage-deflate parameters selected."""
        values: dict[str, list[str]] = {}
        for name, value in headers:
            values.setdefault(name, []).append(value)
        upgrade = values.get("upgrade")
        if upgrade is None or len(upgrade) != 1 or upgrade[0].lower() != "websocket":
            raise ProtocolViolation(f"101 without 'Upgrade: websocket' (got {upgrade})", _INVALID)
        tokens = {t.strip().lower() for v in values.get("connection", ()) for t in v.split(",")}
        if "upgrade" not in tokens:
            raise ProtocolViolation("101 without 'Connection: upgrade'", _INVALID)
        accept = values.get("sec-websocket-accept")
        if accept is None or len(accept) != 1:
            raise ProtocolViolation("101 without exactly one Sec-WebSocket-Accept", _INVALID)
        if accept[0] != self._expected_accept:
            raise ProtocolViolation(
                f"wrong Sec-WebSocket-Accept {accept[0][:40]!r} "
                f"(expected {self._expected_accept!r})",
                _INVALID,
            )
        extensions = [v for v in values.get("sec-websocket-extensions", ()) if v]
        deflate = None
        if self._deflate is not None:
            deflate = negotiate(self._deflate, extensions)
        elif extensions:
            raise ProtocolViolation(
                f"server selected extension {extensions[0][:60]!r}; none was offered", _INVALID
            )
        protocol = values.get("sec-websocket-protocol")
        if protocol is None:
            return None, deflate
        if len(protocol) != 1 or protocol[0] not in self._offered:
            raise ProtocolViolation(
                f"server selected subprotocol {', '.join(protocol)[:60]!r}; offered "
                f"{list(self._offered)}",
                _INVALID,
            )
        return protocol[0], deflate
