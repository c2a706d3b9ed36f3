"""``[target]`` → frozen ``TargetConfig`` (used only by the parser).

The URL, the upgrade request's headers, subprotocols and origin, the connection's limits and
TLS settings. Header values are often secrets, so messages about them never echo the value.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from wsload.scenario._table import Table, show
from wsload.scenario.compression import parse_compression
from wsload.scenario.data import data_holes
from wsload.scenario.deploy import parse_process
from wsload.scenario.model import DataConfig, TargetConfig
from wsload.scenario.server import parse_server
from wsload.scenario.steps import Resolve

__all__ = ["TARGET_KEYS", "parse_target"]

TARGET_KEYS = (
    "url", "headers", "subprotocols", "origin", "source_addresses", "connect_timeout",
    "handshake_timeout", "insecure", "ca_file", "server_name", "engine", "max_message_size",
    "server", "compression", "process", "require_subprotocol",
)  # fmt: skip
"""Every key of ``[target]`` (merged into ``parse.TABLE_KEYS``; docs/scenarios.md)."""

_DATA_HOLE_RE = re.compile(r"\{data:[^{}]*\}")
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
}
_HEADER_KEYS = {"origin": "origin", "sec-websocket-protocol": "subprotocols"}


def parse_target(
    t: Table, base_dir: Path | None, resolve: Resolve, data: DataConfig | None = None
) -> TargetConfig:
    """``[target]`` → ``TargetConfig``: where to connect and how to upgrade (``data``: the
    ``[data]`` rows that ``{data:COLUMN}`` in the URL, headers and origin take)."""
    t.allow(TARGET_KEYS)
    written = t.string("url", "builtin")
    url = resolve(t, "url", written)
    process = parse_process(t.table("process"), url) if t.has("process") else None
    if url != "builtin":
        _check_url(t, url, written, managed=process is not None)
        data_holes(t, "url", url, data, url=True)
    if t.has("server") and url != "builtin":
        raise t.error(
            "server", 'only allowed with url = "builtin" (it configures the built-in server)'
        )
    headers_table = t.table("headers")
    headers: list[tuple[str, str]] = []
    for hname, hvalue in headers_table.data.items():
        headers_table.known.append(hname)
        if not _TOKEN_RE.match(hname):
            raise headers_table.error(hname, "not a valid HTTP header name")
        if hname.lower() in _HEADER_KEYS:
            raise headers_table.error(hname, f"use target.{_HEADER_KEYS[hname.lower()]} instead")
        if hname.lower() in _RESERVED_HEADERS:
            raise headers_table.error(hname, "set by wsload itself (part of the upgrade)")
        if not isinstance(hvalue, str):
            raise headers_table.error(hname, f"expected a single-line string, got {show(hvalue)}")
        if not _sendable(hvalue):
            # the value is not echoed: header values are often secrets (Authorization, Cookie)
            raise headers_table.error(
                hname, "expected a single-line ISO-8859-1 string (the value is not shown)"
            )
        hvalue = resolve(headers_table, hname, hvalue)
        if not _sendable(hvalue):
            raise headers_table.error(
                hname, "its {env:...} value is not single-line ISO-8859-1 (not shown)"
            )
        data_holes(headers_table, hname, hvalue, data, url=False)
        headers.append((hname, hvalue))
    subprotocols = t.string_list("subprotocols")
    for i, proto in enumerate(subprotocols):
        if not _TOKEN_RE.match(proto):
            raise t.error(f"subprotocols[{i}]", f"not a valid token: {proto!r}")
    origin = t.opt_string("origin")
    if origin is not None:
        written_origin, origin = origin, resolve(t, "origin", origin)
        if not _sendable(origin):
            raise t.error("origin", f"expected single-line ISO-8859-1 text, got {written_origin!r}")
        data_holes(t, "origin", origin, data, url=False)
    sources = t.string_list("source_addresses")
    for i, addr in enumerate(sources):
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise t.error(
                f"source_addresses[{i}]", f"expected an IP address, got {addr!r}"
            ) from None
    ca_file = t.opt_string("ca_file")
    if ca_file is not None:
        # Relative to the scenario file; stored absolute so that the resolved copy in a results
        # directory still points at the same file.
        ca_path = Path(ca_file) if base_dir is None else base_dir / ca_file
        if not ca_path.is_file():
            raise t.error("ca_file", f"no such file: {str(ca_path)!r}")
        ca_file = str(ca_path.resolve())
    engine = t.choice("engine", ("wsproto", "trio-websocket"), "wsproto")
    if engine == "trio-websocket":
        for key, value in (("url", url), ("origin", origin or ""), *headers):
            if "{data:" in value:
                where = key if key in ("url", "origin") else f"headers.{key}"
                raise t.error(
                    where, 'a {data:COLUMN} is not possible with engine = "trio-websocket"'
                )
    compression = parse_compression(t)
    if compression is not None and engine != "wsproto":
        raise t.error("compression", 'needs engine = "wsproto" (the reference engine offers none)')
    server = parse_server(t.table("server"))
    config = TargetConfig(
        url=url,
        headers=tuple(headers),
        subprotocols=subprotocols,
        origin=origin,
        source_addresses=sources,
        connect_timeout=t.duration("connect_timeout", 5.0, positive=True),
        handshake_timeout=t.duration("handshake_timeout", 5.0, positive=True),
        insecure=t.boolean("insecure", False),
        ca_file=ca_file,
        server_name=t.opt_string("server_name"),
        engine=cast(Any, engine),
        max_message_size=t.integer("max_message_size", 1 << 20, minimum=1),
        server=server,
        compression=compression,
        process=process,
        require_subprotocol=t.boolean("require_subprotocol", False),
    )
    if config.require_subprotocol and not subprotocols:
        raise t.error(
            "require_subprotocol", "needs target.subprotocols (what the server must pick)"
        )
    if config.require_subprotocol and engine != "wsproto":
        raise t.error("require_subprotocol", 'needs engine = "wsproto"')
    t.finish()
    return config


def _sendable(text: str) -> bool:
    """Text that can go into the upgrade request as it is: ISO-8859-1, one line, no NUL."""
    if any(c in text for c in "\r\n\0"):
        return False
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _check_url(t: Table, url: str, written: str, *, managed: bool) -> None:
    """Check the URL (``{env:...}`` resolved); messages show it as ``written`` (no secrets).

    ``{port}`` is only filled in for a ``managed`` server (``[target.process]``)."""
    if "{port}" in url and not managed:
        raise t.error("url", "{port} is only filled in for a managed server ([target.process])")
    probe = _DATA_HOLE_RE.sub("1", url.replace("{seq}", "1").replace("{port}", "1"))
    if "{data:" in urlsplit(url).netloc:
        raise t.error("url", "{data:COLUMN} may only fill the path and query, not the host")
    url = written
    if not _sendable(probe):
        raise t.error(
            "url", f"expected ISO-8859-1 text without line breaks (percent-encode), got {url!r}"
        )
    try:
        parts = urlsplit(probe)
        port = parts.port
    except ValueError as exc:
        raise t.error("url", f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise t.error("url", f'expected "builtin" or a ws:// or wss:// URL, got {url!r}')
    if not parts.hostname:
        raise t.error("url", f"no host in {url!r}")
    if port == 0:
        raise t.error("url", f"port must be 1-65535 in {url!r}")
    if parts.fragment:
        raise t.error("url", f"WebSocket URLs cannot have a #fragment: {url!r}")
