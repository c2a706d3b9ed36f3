"""Human durations: ``"250ms"``, ``"10s"``, ``"2m"``, ``"1h30m"``, ``"1.5s"`` or seconds."""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h)")


def parse_duration(value: object) -> float:
    """Seconds from a TOML value.

    Raises:
        ValueError: with a message fit to follow "key: " in a ScenarioError.
    """
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "250ms" or "10s", got {value!r}')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise ValueError(
                f'expected a duration like "250ms", "10s", "2m" or "1h30m", got {value!r}'
            )
    else:
        raise ValueError(f'expected a duration like "250ms" or "10s", got {value!r}')
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a finite duration >= 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling ``parse_duration`` reads back (``"1h30m"``, ``"250ms"``)."""
    if seconds == 0:
        return "0s"
    us = round(seconds * 1e6)
    if us % 1_000_000:
        return f"{us // 1000}ms" if us % 1000 == 0 else f"{us}us"
    whole = us // 1_000_000
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            out += f"{whole // size}{unit}"
            whole %= size
    return out
