"""summary.json: shape, sums, behaviours, generator, server, strict JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from wsload import __version__
from wsload._compiled import status
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.metrics.collector import Collector
from wsload.metrics.counts import MESSAGE_COUNTERS
from wsload.metrics.histograms import PERCENTILES, record
from wsload.metrics.result import ReceiveClocks, RunResult, SegmentResult, new_lag_histogram
from wsload.report.summary import SCHEMA_VERSION, attach_thresholds, build_summary, iso_utc
from wsload.report.thresholds import evaluate
from wsload.scenario.dump import scenario_to_dict
from wsload.scenario.model import METRICS, Scenario
from wsload.scenario.parse import parse_scenario

SCENARIO_TOML = """
name = "mix"
seed = 7
[load]
rate = 100
duration = "2s"
[[close]]
kind = "clean"
weight = 70
[[close]]
kind = "terminate"
weight = 20
[[close]]
kind = "await_server_close"
name = "srv"
weight = 10
[thresholds]
"close_handshake.p99" = "< 50ms"
"outcomes.clean" = "> 60%"
"behaviours.srv.outcomes.server_closed" = "== 100%"
"""


def scenario() -> Scenario:
    return parse_scenario(SCENARIO_TOML, source="mix.toml")


def _clean(seq: int, t: float, rtt: float) -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=t,
        connect_start=t, connect_end=t + 0.0002, request_sent=t + 0.0003, upgraded=t + 0.0008,
        close_initiated=t + 0.002, close_sent=t + 0.002, close_received=t + 0.002 + rtt,
        eof=t + 0.0025 + rtt, socket_closed=t + 0.0026 + rtt, message_rtts=(0.0001,),
        code_sent=1000, code_received=1000, close_initiator=Side.CLIENT,
    )  # fmt: skip


def _terminated(seq: int, t: float) -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq, label="terminate", kind="terminate", outcome=Outcome.TERMINATED, scheduled=t,
        connect_start=t, connect_end=t + 0.0002, request_sent=t + 0.0003, upgraded=t + 0.0008,
        close_initiated=t + 0.002, socket_closed=t + 0.0021,
    )  # fmt: skip


def _server_closed(seq: int, t: float) -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq, label="srv", kind="await_server_close", outcome=Outcome.SERVER_CLOSED,
        scheduled=t, upgraded=t + 0.001, close_initiated=t + 1.0, close_received=t + 1.0,
        close_sent=t + 1.0001, eof=t + 1.0003, socket_closed=t + 1.0004, code_sent=4000,
        code_received=4000, close_initiator=Side.SERVER,
    )  # fmt: skip


def make_result(**overrides: object) -> RunResult:
    c = Collector(labels=[spec.label for spec in scenario().close], start=0.0)
    for i in range(100):
        seq, t = i + 1, i * 0.01
        if i % 10 < 7:
            c.add(_clean(seq, t, rtt=0.001 + i * 0.00001))
        elif i % 10 < 9:
            c.add(_terminated(seq, t))
        else:
            c.add(_server_closed(seq, t))
    c.add(
        ConnectionRecord(
            seq=101, label="clean", kind="clean", outcome=Outcome.HANDSHAKE_REJECTED,
            scheduled=1.0, connect_start=1.0, connect_end=1.0002, http_status=503,
        )
    )  # fmt: skip
    c.add_dropped(3)
    lag = new_lag_histogram()
    for v in (100, 200, 15_000):
        record(lag, v)
    fields: dict[str, object] = {
        "scenario": scenario(),
        "started_at": datetime(2026, 11, 21, 17, 0, 1, 250000, tzinfo=UTC),
        "duration_s": 2.0,
        "collector": c,
        "loop_lag": lag,
        "cpu_seconds": 0.5,
        "processes": 1,
        "intervals": 2,
    }
    fields.update(overrides)
    outer = {
        name: fields.pop(name) for name in ("scenario", "started_at", "server") if name in fields
    }
    return RunResult(load=SegmentResult(**fields), **outer)  # type: ignore[arg-type]


def test_top_level_shape_and_versions() -> None:
    s = build_summary(make_result())
    assert list(s) == [
        "schema_version", "wsload_version", "scenario", "scenario_hash", "started_at",
        "duration_s", "interrupted", "ended_by", "intervals", "totals", "rates", "outcomes",
        "close_codes",
        "close_code_names", "close_events", "http_statuses", "close_reasons", "errors",
        "latency_us",
        "behaviours", "generator", "server", "target",
        "thresholds",
    ]  # fmt: skip
    assert s["schema_version"] == SCHEMA_VERSION == 2
    assert s["wsload_version"] == __version__
    assert s["scenario"] == scenario_to_dict(scenario())
    assert s["started_at"] == "2026-11-21T17:00:01.250000Z"
    assert s["duration_s"] == 2.0 and s["interrupted"] is False and s["intervals"] == 2
    assert s["server"] is None and s["thresholds"] == []
    assert s["target"] is None  # wsload run's sizing of this machine fills it in
    json.dumps(s, allow_nan=False)  # strict JSON: what CI parses


def test_totals_and_outcomes_sum_to_attempted() -> None:
    s = build_summary(make_result())
    assert s["totals"] == {"intended": 104, "attempted": 101, "dropped": 3, "opened": 100,
                           "clean": 80, **dict.fromkeys(MESSAGE_COUNTERS, 0),
                           "extensions": {}, "subprotocols": {}, "close_metric": None}  # fmt: skip
    assert list(s["outcomes"]) == [o.value for o in Outcome]  # every outcome, fixed order
    assert sum(s["outcomes"].values()) == s["totals"]["attempted"]
    assert s["outcomes"]["clean"] == 70 and s["outcomes"]["terminated"] == 20
    assert s["outcomes"]["server_closed"] == 10 and s["outcomes"]["handshake_rejected"] == 1
    assert s["rates"] == {"intended_per_s": 52.0, "attempted_per_s": 50.5}
    assert s["http_statuses"] == {"503": 1}
    for label, b in s["behaviours"].items():
        assert sum(b["outcomes"].values()) == b["attempted"], label


def test_close_codes_are_string_keys_with_rfc_names() -> None:
    s = build_summary(make_result())
    assert s["close_codes"] == {
        "sent": {"1000": 70, "4000": 10},
        "received": {"1000": 70, "4000": 10},
    }
    assert s["close_code_names"] == {"1000": "Normal Closure", "4000": "Private Use"}


CENSORED_FIELDS = [
    "started", "censored", *(f"{p}_censored" for p in PERCENTILES), "max_censored",
    "censored_after_us", "censored_by",
]  # fmt: skip


def test_latency_has_every_metric_and_stat_and_null_without_samples() -> None:
    s = build_summary(make_result())
    assert list(s["latency_us"]) == list(METRICS)
    for stats in s["latency_us"].values():
        assert list(stats) == [
            "count",
            "min",
            "mean",
            *PERCENTILES,
            "max",
            "overflow",
            *CENSORED_FIELDS,
        ]
    close = s["latency_us"]["close_handshake"]
    assert close["count"] == 70 and close["min"] == 1000 and close["overflow"] == 0
    assert close["max"] == 1960  # i = 96: 1 ms + 96 × 10 µs
    assert s["latency_us"]["ping_rtt"]["count"] == 0 and s["latency_us"]["ping_rtt"]["p99"] is None
    assert s["latency_us"]["server_close_wait"]["count"] == 10
    assert s["latency_us"]["connect"]["count"] == 91  # the rejected one connected too


def test_behaviours_in_scenario_order_with_their_own_figures() -> None:
    s = build_summary(make_result())
    assert list(s["behaviours"]) == ["clean", "terminate", "srv"]
    clean, term, srv = (s["behaviours"][k] for k in ("clean", "terminate", "srv"))
    assert list(clean) == ["kind", "close_metric", "attempted", "opened", "clean", "outcomes",
                           "close_codes", "close_events", "http_statuses", "errors", "latency_us",
                           *MESSAGE_COUNTERS]  # fmt: skip
    assert (clean["kind"], clean["attempted"], clean["opened"], clean["clean"]) == (
        "clean", 71, 70, 70
    )  # fmt: skip
    assert clean["http_statuses"] == {"503": 1}
    assert (term["kind"], term["attempted"], term["clean"]) == ("terminate", 20, None)
    assert term["latency_us"]["close_handshake"]["count"] == 0
    assert term["close_codes"] == {"sent": {}, "received": {}}
    assert (srv["kind"], srv["clean"]) == ("await_server_close", 10)
    assert srv["latency_us"]["server_close_wait"]["p50"] == 999_423  # 999 ms, 3 digits
    assert srv["close_codes"]["received"] == {"4000": 10}


def test_a_behaviour_with_no_connection_is_still_reported() -> None:
    c = Collector(labels=("clean",))
    s = build_summary(make_result(collector=c))
    assert s["behaviours"]["srv"]["attempted"] == 0
    assert s["behaviours"]["srv"]["latency_us"]["close_total"]["p50"] is None
    assert s["totals"]["clean"] == 0 and sum(s["outcomes"].values()) == 0
    assert s["rates"]["attempted_per_s"] == 0.0
    json.dumps(s, allow_nan=False)


def test_generator_and_server_sections() -> None:
    start_lag = new_lag_histogram()
    record(start_lag, 40)
    server = {"connections": 100, "closes_answered": 80}
    s = build_summary(make_result(saturated=True, processes=2, server=server, start_lag=start_lag))
    g = s["generator"]
    assert g["saturated"] is True and g["processes"] == 2 and g["cpu_seconds"] == 0.5
    assert g["loop_lag_us"]["count"] == 3 and g["loop_lag_us"]["p50"] == 200
    assert 15_000 <= g["loop_lag_us"]["max"] <= 15_015
    assert g["start_lag_us"]["max"] == 40
    assert g["build"] == status().label and g["build"] in ("compiled (mypyc)", "pure")
    assert g["receive_clock"] is None and g["notice_lag_us"]["count"] == 0  # nothing was read
    assert s["server"] == server and s["server"] is not server


def test_receive_clock_names_the_clock_of_the_received_frames() -> None:
    notice = new_lag_histogram()
    for us in (30, 40, 9_000):
        record(notice, us)
    for clocks, name in (
        (ReceiveClocks(kernel=5), "kernel"),
        (ReceiveClocks(loop=5), "loop"),
        (ReceiveClocks(kernel=4, loop=1, coalesced=2), "mixed"),
    ):
        g = build_summary(make_result(notice_lag=notice, receive_clocks=clocks))["generator"]
        assert g["receive_clock"] == name
        assert g["coalesced_stamps"] == clocks.coalesced
        assert g["notice_lag_us"]["count"] == 3 and g["notice_lag_us"]["min"] == 30


def test_priority_raised_is_said_and_survives_the_wire_and_the_merge() -> None:
    """``generator.priority_raised``: how many nice steps a generator ran above its own start
    (a storm's release pass inside its drain: 14), the largest over merged parts; a wire form
    written before the field reads as 0."""
    assert build_summary(make_result())["generator"]["priority_raised"] == 0
    raised = make_result(priority_raised=14, segment="0/2").load
    assert build_summary(make_result(priority_raised=14))["generator"]["priority_raised"] == 14
    back = SegmentResult.from_wire(json.loads(json.dumps(raised.to_wire())))
    assert back.priority_raised == 14
    other = make_result(segment="1/2").load
    assert SegmentResult.merge([other, back]).priority_raised == 14
    older = {k: v for k, v in other.to_wire().items() if k != "priority_raised"}
    assert SegmentResult.from_wire(older).priority_raised == 0


def test_started_at_is_always_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2026, 1, 1, 2, 0, tzinfo=plus2)) == "2026-01-01T00:00:00Z"
    assert iso_utc(datetime(2026, 1, 1, 2, 0)) == "2026-01-01T02:00:00Z"


def test_thresholds_evaluated_on_the_summary_are_attached() -> None:
    result = make_result()
    data = build_summary(result)
    verdicts = evaluate(result.scenario.thresholds, data)
    full = attach_thresholds(data, verdicts)
    assert data["thresholds"] == []  # the input is not modified
    assert [(t["expr"], t["ok"]) for t in full["thresholds"]] == [
        ("close_handshake.p99", True),
        ("outcomes.clean", True),
        ("behaviours.srv.outcomes.server_closed", True),
    ]
    assert build_summary(result, verdicts) == full
    assert full["thresholds"][1] == {
        "expr": "outcomes.clean", "condition": "> 60%", "unit": "share",
        "value": 70 / 101, "ok": True, "detail": "69.3 % (70 of 101)",
    }  # fmt: skip


def test_interrupted_run() -> None:
    s = build_summary(make_result(interrupted=True, scenario=replace(scenario(), seed=None)))
    assert s["interrupted"] is True and "seed" not in s["scenario"]
