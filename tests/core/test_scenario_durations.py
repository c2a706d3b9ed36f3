"""Durations: the grammar users write, the errors they get, and an exact format round trip."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.scenario.durations import format_duration, parse_duration

pytestmark = pytest.mark.usefixtures("bounded_sync")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("10s", 10.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1s500ms", 1.5),
        ("1.5s", 1.5),
        ("0.5ms", 0.0005),
        ("20us", 20e-6),
        ("20µs", 20e-6),  # MICRO SIGN
        ("20μs", 20e-6),  # GREEK SMALL LETTER MU
        ("0s", 0.0),
        ("0", None),  # a string without unit is not a duration (see invalid)
        (" 2 s ", 2.0),
        ("1 h 30 m", 5400.0),
        (0, 0.0),
        (5, 5.0),
        (0.25, 0.25),
    ],
)
def test_valid_durations(text: object, seconds: float | None) -> None:
    if seconds is None:
        with pytest.raises(ValueError):
            parse_duration(text)
        return
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", 'expected a duration like "250ms"'),
        ("10", 'expected a duration like "250ms"'),
        ("10 sec", "got '10 sec'"),
        ("ms", "got 'ms'"),
        ("-5s", "got '-5s'"),
        ("+5s", "got '+5s'"),
        (".5s", "got '.5s'"),
        ("5.s", "got '5.s'"),
        ("1e3ms", "got '1e3ms'"),
        ("5d", "got '5d'"),
        ("٥s", "got '٥s'"),  # Arabic-Indic digit: ASCII digits only
        ("s5", "got 's5'"),
        (-1, "must be a finite duration >= 0, got -1"),
        (-0.5, "must be a finite duration >= 0"),
        (math.inf, "must be a finite duration >= 0, got inf"),
        (math.nan, "must be a finite duration >= 0, got nan"),
        (10**400, "must be a finite duration >= 0"),
        ("9" * 400 + "s", "must be a finite duration >= 0"),
        ("9" * 5000 + "s", "must be a finite duration >= 0"),
        (True, "got True"),
        ([1], "got a list"),
        ({"min": "1s"}, "got a table"),
        (None, "got None"),
    ],
)
def test_invalid_durations_say_what_was_expected(value: object, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (1.0, "1s"),
        (90.0, "1m30s"),
        (3600.0, "1h"),
        (5400.0, "1h30m"),
        (3661.0, "1h1m1s"),
        (0.25, "250ms"),
        (1.5, "1500ms"),
        (0.002, "2ms"),
        (20e-6, "20us"),
        (1e-7, "0.0000001s"),
        (1e20, "100000000000000000000s"),
    ],
)
def test_format_is_short_and_readable(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_parts_are_summed_exactly_then_rounded_once() -> None:
    assert parse_duration("1.1ms") == 0.0011 == parse_duration("1100us")
    assert parse_duration("20us") == 20e-6
    assert parse_duration("0.1s200ms") == 0.3  # not 0.1 + 0.2


def test_format_falls_back_to_exact_decimal_seconds() -> None:
    noisy = 0.1 + 0.2  # 0.30000000000000004: no ms/us spelling reads back to it
    assert format_duration(noisy) == "0.30000000000000004s"
    assert parse_duration(format_duration(noisy)) == noisy


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_format_rejects_non_durations(bad: float) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        format_duration(bad)


_any_seconds = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
_units = st.sampled_from(["us", "µs", "ms", "s", "m", "h"])


@settings(max_examples=400, deadline=None)
@given(_any_seconds)
def test_format_round_trips_exactly(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert "e" not in text  # the grammar has no exponent


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), _units), min_size=1, max_size=4))
def test_written_durations_round_trip(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    seconds = parse_duration(text)
    assert seconds >= 0
    assert parse_duration(format_duration(seconds)) == seconds


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_arbitrary_text_is_a_duration_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert "got" in str(exc)
    else:
        assert math.isfinite(seconds) and seconds >= 0
