"""RFC 6455 §7.4 close codes: names and which ones an endpoint may put on the wire."""

from __future__ import annotations

__all__ = ["RFC_NAMES", "code_name", "is_sendable", "label"]

RFC_NAMES: dict[int, str] = {
    1000: "Normal Closure",
    1001: "Going Away",
    1002: "Protocol Error",
    1003: "Unsupported Data",
    1004: "Reserved",
    1005: "No Status Received",
    1006: "Abnormal Closure",
    1007: "Invalid Frame Payload Data",
    1008: "Policy Violation",
    1009: "Message Too Big",
    1010: "Mandatory Extension",
    1011: "Internal Error",
    1012: "Service Restart",
    1013: "Try Again Later",
    1014: "Bad Gateway",
    1015: "TLS Handshake",
}


def code_name(code: int) -> str:
    """The RFC (or IANA registry) name of ``code``, or its range's use."""
    if code in RFC_NAMES:
        return RFC_NAMES[code]
    if 3000 <= code <= 3999:
        return "Library/Framework"
    if 4000 <= code <= 4999:
        return "Private Use"
    if 1016 <= code <= 2999:
        return "Unassigned"
    return "Invalid"


def label(code: int) -> str:
    """``1000 (Normal Closure)``: how codes appear in text output."""
    return f"{code} ({code_name(code)})"


def is_sendable(code: int) -> bool:
    """Whether an endpoint may send ``code`` in a Close frame.

    1004, 1005, 1006 and 1015 are reserved for reporting and never go on the wire; codes
    below 1000, 1016-2999 and from 5000 up are invalid.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
