"""Human durations: ``"250ms"``, ``"10s"``, ``"2m"``, ``"1h30m"``, ``"1.5s"`` or seconds.

``format_duration`` is the inverse used by the resolved dump: its output parses back to exactly
the same float, which is what lets a results directory's ``scenario.toml`` reproduce the run.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

__all__ = ["format_duration", "parse_duration"]

_MICRO = Fraction(1, 1_000_000)
_UNITS = {
    "us": _MICRO,
    "µs": _MICRO,
    "μs": _MICRO,
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
# ASCII digits only: ``\d`` would also take e.g. Arabic-Indic digits, which nobody means.
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(us|µs|μs|ms|s|m|h)")
_EXAMPLES = '"250ms", "10s", "2m" or "1h30m"'


def parse_duration(value: object) -> float:
    """Seconds from a TOML value: a string with units, or a plain number of seconds.

    Units are ``us`` (or ``µs``), ``ms``, ``s``, ``m`` and ``h``; parts add up (``"1h30m"``,
    ``"1s500ms"``); spaces are ignored. A bare number is seconds.

    Raises:
        ValueError: with a message fit to follow "key: " in a ScenarioError.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like {_EXAMPLES}, got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # a TOML integer beyond float range
            raise ValueError(f"must be a finite duration >= 0, got {value!r}") from None
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos = 0
        exact = Fraction(0)
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            try:
                exact += Fraction(match.group(1)) * _UNITS[match.group(2)]
            except ValueError:  # over Python's int-from-str digit limit
                raise ValueError(f"must be a finite duration >= 0, got {value!r:.40}") from None
            pos = match.end()
        if not text or pos != len(text):
            raise ValueError(f"expected a duration like {_EXAMPLES}, got {value!r}")
        # Summed exactly, rounded once: "20us" is the float nearest 20e-6, as written.
        try:
            seconds = float(exact)
        except OverflowError:
            raise ValueError(f"must be a finite duration >= 0, got {value!r}") from None
    else:
        raise ValueError(f"expected a duration like {_EXAMPLES}, got {_kind(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a finite duration >= 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable spelling that ``parse_duration`` reads back to exactly ``seconds``.

    Whole seconds become ``"1h30m"``-style, then whole milliseconds (``"250ms"``) and whole
    microseconds (``"1500us"``) are tried; anything else (sub-microsecond parts, float noise
    such as ``0.1 + 0.2``) is written as decimal seconds (``"0.30000000000000004s"``), which
    always reads back exactly.

    Raises:
        ValueError: ``seconds`` is negative or not finite (no spelling exists).
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {seconds!r}")
    if seconds == 0:
        return "0s"
    for candidate in _candidates(seconds):
        if parse_duration(candidate) == seconds:
            return candidate
    # repr() is the shortest decimal that reads back to the same float; "f" avoids exponents,
    # which the duration grammar does not have. float(text) * 1.0 is exact.
    return format(Decimal(repr(float(seconds))), "f") + "s"


def _candidates(seconds: float) -> list[str]:
    out: list[str] = []
    if seconds == math.floor(seconds) and seconds < 1e15:
        whole = int(seconds)
        text = ""
        for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
            if whole >= size:
                text += f"{whole // size}{unit}"
                whole %= size
        out.append(text)
    for unit, scale in (("ms", 1e3), ("us", 1e6)):
        scaled = round(seconds * scale)
        if 0 < scaled < 10**15:
            out.append(f"{scaled}{unit}")
    return out


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
