"""Why connections failed: normalising details, grouping them, exact merges across processes,
the ``errors`` section of summary.json, the "nothing measured" verdict, and close_start_lag."""

from __future__ import annotations

import json

import pytest

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.metrics.collector import Collector
from wsload.metrics.failures import MAX_GROUPS, ErrorTally, normalise
from wsload.metrics.samples import metric_samples
from wsload.report.summary import errors_section
from wsload.report.why import nothing_measured, storm_release, why_rows

pytestmark = pytest.mark.usefixtures("bounded_sync")


def failed(seq: int, outcome: Outcome, detail: str, *, kind: str = "clean") -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq, label=kind, kind=kind, outcome=outcome, scheduled=0.0, detail=detail
    )


def texts(tally: ErrorTally, outcome: str) -> list[tuple[str, int, int]]:
    groups, _ = tally.top(outcome, 10)
    return [(g.text, g.count, g.example_seq) for g in groups]


@pytest.mark.parametrize(
    ("a", "b", "shown"),
    [
        (  # addresses and ports fold, the OS error's preamble goes: the cause remains
            "[Errno 111] Error connecting to ('127.0.0.1', 9): Connection refused",
            "[Errno 111] Error connecting to ('::1', 4242, 0, 0): Connection refused",
            "Connection refused",
        ),
        ("HTTP 401 Unauthorized", "HTTP 401 Unauthorized", "HTTP 401 Unauthorized"),
        (  # a number that varies reads <n>; one that does not stays
            "no complete upgrade response within 2s after 17 bytes",
            "no complete upgrade response within 2s after 95 bytes",
            "no complete upgrade response within 2s after <n> bytes",
        ),
        (  # random keys are tokens
            "wrong key 'xmw3u2kCsRPKwdxjhU2TMVsRCbt8=' (expected 'mw3u2kCsRPKwdxjh=')",
            "wrong key 'xr2Y48EoXNEdZI3eRWqxEdg1y8Ls=' (expected 'r2Y48EoXNEdZI3eR=')",
            "wrong key '<id>' (expected '<id>')",
        ),
        ("peer at 10.0.0.7:8080 reset", "peer at [::1]:8081 reset", "peer at <addr> reset"),
        ("", "", "(no detail)"),
    ],
)
def test_one_cause_groups_into_one_readable_detail(a: str, b: str, shown: str) -> None:
    assert normalise(a)[0] == normalise(b)[0]
    tally = ErrorTally()
    tally.add("x", a, 7)
    tally.add("x", b, 3)
    assert texts(tally, "x") == [(shown, 2, 3)]


def test_different_causes_stay_apart_most_frequent_first() -> None:
    tally = ErrorTally()
    for seq in range(1, 31):
        tally.add("handshake_rejected", f"HTTP {401 if seq % 3 else 404} Nope", seq)
    assert texts(tally, "handshake_rejected") == [
        ("HTTP 401 Nope", 20, 1),
        ("HTTP 404 Nope", 10, 3),
    ]


def test_top_n_and_other_and_the_group_cap() -> None:
    tally = ErrorTally()
    for seq in range(MAX_GROUPS + 20):  # every detail different: more causes than are kept
        tally.add(
            "protocol_error",
            f"reason {'ab'[seq % 2]}{chr(65 + seq % 26) * (seq // 26 + 1)}",
            seq + 1,
        )
    groups, rest = tally.top("protocol_error", 10)
    assert len(groups) == 10
    assert rest + sum(g.count for g in groups) == MAX_GROUPS + 20
    section = errors_section(tally)["protocol_error"]
    assert section["count"] == MAX_GROUPS + 20 and section["other"] == rest
    assert len(section["details"]) == 10


def test_merge_and_wire_are_exact() -> None:
    """Two workers' tallies merged equal one tally that saw every connection; the wire form
    (what --workers pipes and totals.json stores) round-trips through JSON."""
    details = [
        (Outcome.REFUSED, "[Errno 111] Error connecting to ('127.0.0.1', 9): Connection refused"),
        (Outcome.HANDSHAKE_REJECTED, "HTTP 401 Unauthorized"),
        (Outcome.HANDSHAKE_TIMEOUT, "no complete upgrade response within 2s after 5 bytes"),
    ]
    records = [failed(seq, *details[seq % 3]) for seq in range(1, 41)]
    records.append(
        failed(
            41, Outcome.HANDSHAKE_TIMEOUT, "no complete upgrade response within 2s after 6 bytes"
        )
    )
    whole, a, b = Collector(), Collector(), Collector()
    for record in records:
        whole.add(record)
        (a if record.seq % 2 else b).add(record)
    merged = Collector()
    for part in (a, b):
        merged.merge(Collector.from_wire(json.loads(json.dumps(part.to_wire()))))
    assert errors_section(merged.errors()) == errors_section(whole.errors())
    section = errors_section(whole.errors())
    assert section["handshake_timeout"]["details"] == [
        {
            "detail": "no complete upgrade response within 2s after <n> bytes",
            "count": 14,
            "example_seq": 2,
        }
    ]
    assert section["refused"]["details"][0] == {
        "detail": "Connection refused", "count": 13, "example_seq": 3
    }  # fmt: skip


def test_wire_without_errors_still_loads_and_a_bad_one_is_named() -> None:
    wire = Collector().to_wire()
    wire["labels"] = {"clean": {"kind": "clean", "attempted": 0, "opened": 0}}  # an older worker
    assert Collector.from_wire(wire).errors().groups == {}
    wire["labels"]["clean"]["errors"] = {"groups": {"refused": [["a\x00", [], 1, 1]]}}
    with pytest.raises(ValueError, match=r"labels\.clean\.errors: malformed"):
        Collector.from_wire(wire)


def test_expected_endings_are_not_errors() -> None:
    collector = Collector()
    collector.add(failed(1, Outcome.TERMINATED, "", kind="terminate"))
    collector.add(failed(2, Outcome.CLEAN, ""))
    collector.add(failed(3, Outcome.SERVER_DROPPED, "", kind="ignore_server_close"))
    collector.add(failed(4, Outcome.ABNORMAL, "server closed TCP without a Close frame (1006)"))
    assert errors_section(collector.errors()) == {
        "abnormal": {
            "count": 1,
            "details": [
                {
                    "detail": "server closed TCP without a Close frame (1006)",
                    "count": 1,
                    "example_seq": 4,
                }
            ],
            "other": 0,
        }
    }


def test_details_are_redacted() -> None:
    tally = ErrorTally()
    tally.add("handshake_rejected", "HTTP 403 bad token for wss://h/x?token=s3cret", 1)
    (detail,) = errors_section(tally)["handshake_rejected"]["details"]
    assert "s3cret" not in detail["detail"] and "token=REDACTED" in detail["detail"]


def summary(opened: int, outcomes: dict[str, int], errors: dict[str, str]) -> dict[str, object]:
    return {
        "totals": {"attempted": sum(outcomes.values()), "opened": opened, "dropped": 0},
        "outcomes": outcomes,
        "errors": {
            name: {
                "count": outcomes[name],
                "details": [{"detail": d, "count": outcomes[name], "example_seq": 1}],
                "other": 0,
            }
            for name, d in errors.items()
        },
    }


def test_nothing_measured_names_the_most_common_reason() -> None:
    assert nothing_measured(summary(1, {"clean": 1, "refused": 9}, {})) is None
    assert (
        nothing_measured(summary(0, {"refused": 50}, {"refused": "Connection refused"}))
        == "no connection opened: 50 refused (Connection refused)"
    )
    several = summary(
        0,
        {"tls_error": 2, "refused": 5, "handshake_rejected": 3, "connect_timeout": 1},
        {"refused": "Connection refused", "handshake_rejected": "HTTP 401 Unauthorized"},
    )
    assert nothing_measured(several) == (
        "no connection opened: 5 refused (Connection refused), 3 handshake_rejected "
        "(HTTP 401 Unauthorized), 2 tls_error, 1 more"
    )
    assert nothing_measured(summary(0, {}, {})) == "no connection opened: none was attempted"


def test_why_rows_print_each_outcome_once_and_other_last() -> None:
    errors = {
        "refused": {
            "count": 7,
            "details": [{"detail": "Connection refused", "count": 5, "example_seq": 2}],
            "other": 2,
        },
    }
    assert [(r.outcome, r.first, r.count, r.detail, r.example_seq) for r in why_rows(errors)] == [
        ("refused", True, 5, "Connection refused", 2),
        ("refused", False, 2, "other", None),
    ]


def test_close_start_lag_counts_from_the_release() -> None:
    record = ConnectionRecord(
        seq=1, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=1.0,
        upgraded=1.5, close_initiated=5.25, socket_closed=5.5,
    )  # fmt: skip
    assert dict(metric_samples(record, release_at=5.0))["close_start_lag"] == pytest.approx(0.25)
    assert "close_start_lag" not in dict(metric_samples(record))  # not a storm
    assert "close_start_lag" not in dict(metric_samples(record, release_at=6.0))  # closed before
    collector = Collector()
    collector.release_at = 5.0
    collector.add(record)
    stats = collector.stats("close_start_lag")
    assert (stats["count"], stats["max"]) == (1, pytest.approx(250_000, rel=1e-3))
    line = storm_release({"latency_us": {"close_start_lag": stats}, "generator": {}})
    assert line is not None and line.startswith("released 1 closes in 250 ms")


def test_a_segmented_storm_counts_close_start_lag_from_the_shared_instant() -> None:
    """The segment released at 5.0, 0.2 s after the shared instant 4.8: its closes count from
    4.8 (its lateness is in the metric), and only closes begun at or after its release count."""
    record = ConnectionRecord(
        seq=1, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=1.0,
        upgraded=1.5, close_initiated=5.25, socket_closed=5.5,
    )  # fmt: skip
    assert dict(metric_samples(record, 5.0, 4.8))["close_start_lag"] == pytest.approx(0.45)
    assert "close_start_lag" not in dict(metric_samples(record, 5.3, 4.8))  # began before
    stats = {"count": 10_000, "p50": 40_000, "p99": 45_000, "max": 48_000}
    release = {"planned": 6.0, "first": 6.0004, "last": 6.0037}
    summary = {"latency_us": {"close_start_lag": stats}, "generator": {"storm_release_s": release}}
    assert storm_release(summary) == (
        "released 10,000 closes in 48 ms from the segments' shared release instant"
        " (close_start_lag p50 40 ms, p99 45 ms); the segments released 400 µs to 3.7 ms"
        " after it"
    )
