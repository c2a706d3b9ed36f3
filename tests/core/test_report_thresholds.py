"""Threshold verdicts: every expression form, every operator, missing figures fail."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.metrics.collector import Collector
from wsload.metrics.reconnects import ReconnectAudit
from wsload.metrics.result import RunResult, SegmentResult, new_lag_histogram
from wsload.report.summary import build_summary
from wsload.report.thresholds import ThresholdResult, evaluate, evaluate_one
from wsload.scenario.model import ReconnectConfig, Scenario, Threshold
from wsload.scenario.parse import parse_scenario

BASE = """
name = "t"
[load]
rate = 10
duration = "1s"
[[close]]
kind = "clean"
weight = 3
[[close]]
kind = "terminate"
weight = 1
[[close]]
kind = "ignore_server_close"
name = "ignore"
weight = 1
"""


def scenario(thresholds: dict[str, str]) -> Scenario:
    lines = "\n".join(f'"{expr}" = "{cond}"' for expr, cond in thresholds.items())
    return parse_scenario(BASE + "[thresholds]\n" + lines + "\n", source="t.toml")


def summary(*, saturated: bool = False, overflow: bool = False) -> dict[str, Any]:
    """100 clean closes of 1000..1099 µs (exact buckets), 20 terminates, 5 rejected."""
    c = Collector(labels=("clean", "terminate", "ignore"), start=0.0)
    for i in range(100):
        rtt = (1000 + i) / 1e6
        c.add(
            ConnectionRecord(
                seq=i + 1, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=0.0,
                upgraded=0.001, close_initiated=1.0, close_sent=1.0, close_received=1.0 + rtt,
                code_sent=1000, code_received=1000 if i < 90 else 1001,
                close_initiator=Side.CLIENT,
                socket_closed=(3601.0 if overflow and i == 99 else 1.01),
            )
        )  # fmt: skip
    for i in range(20):
        c.add(
            ConnectionRecord(
                seq=200 + i, label="terminate", kind="terminate", outcome=Outcome.TERMINATED,
                scheduled=0.0, upgraded=0.001, close_initiated=0.5, socket_closed=0.5001,
            )
        )  # fmt: skip
    for i in range(5):
        c.add(
            ConnectionRecord(
                seq=300 + i, label="clean", kind="clean",
                outcome=Outcome.HANDSHAKE_REJECTED, scheduled=0.0, http_status=503,
            )
        )  # fmt: skip
    result = RunResult(
        scenario=scenario({}),
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        load=SegmentResult(
            duration_s=1.0, collector=c, loop_lag=new_lag_histogram(), saturated=saturated
        ),
    )
    return build_summary(result)


SUMMARY = summary()


def verdict(expr: str, cond: str, data: dict[str, Any] | None = None) -> ThresholdResult:
    (threshold,) = scenario({expr: cond}).thresholds
    return evaluate_one(threshold, SUMMARY if data is None else data)


@pytest.mark.parametrize(
    ("expr", "cond", "ok", "value", "detail"),
    [
        ("close_handshake.p50", "<= 1049us", True, 1049, "1.05 ms"),
        ("close_handshake.p50", "< 1049us", False, 1049, "1.05 ms"),
        ("close_handshake.p90", "== 1089us", True, 1089, "1.09 ms"),
        ("close_handshake.p99", "< 1.1ms", True, 1098, "1.1 ms"),
        ("close_handshake.p999", ">= 1099us", True, 1099, "1.1 ms"),
        ("close_handshake.max", "!= 1099us", False, 1099, "1.1 ms"),
        ("close_handshake.min", "> 999us", True, 1000, "1 ms"),
        ("close_handshake.mean", "< 1050us", True, 1049.5, "1.05 ms"),
        ("close_handshake.count", "== 100", True, 100, "100"),
        ("connect.p99", "< 1s", False, None, "no samples"),
        ("connect.count", "== 0", True, 0, "0"),
        ("behaviours.clean.close_handshake.p50", "< 2ms", True, 1049, "1.05 ms"),
        ("behaviours.terminate.close_handshake.p50", "< 2ms", False, None, "no samples"),
        ("behaviours.terminate.close_total.count", ">= 20", True, 20, "20"),
        ("outcomes.clean", "> 79%", True, 0.8, "80.0 % (100 of 125)"),
        ("outcomes.clean", "== 100", True, 100, "100"),
        ("outcomes.reset", "== 0", True, 0, "0"),
        ("outcomes.handshake_rejected", "< 5%", True, 0.04, "4.0 % (5 of 125)"),
        ("behaviours.clean.outcomes.clean", ">= 95%", True, 100 / 105, "95.2 % (100 of 105)"),
        ("behaviours.terminate.outcomes.terminated", "== 100%", True, 1.0, "100.0 % (20 of 20)"),
        ("behaviours.ignore.outcomes.server_dropped", "> 50%", False, None,
         "no connections attempted"),
        ("close_codes.received.1000", ">= 90", True, 90, "90"),
        ("close_codes.received.1001", "> 5%", True, 10 / 125, "8.0 % (10 of 125)"),
        ("close_codes.sent.1000", "== 100%", False, 0.8, "80.0 % (100 of 125)"),
        ("close_codes.received.1006", "== 0", True, 0, "0"),
        ("behaviours.clean.close_codes.sent.1000", "> 95%", True, 100 / 105,
         "95.2 % (100 of 105)"),
        ("close_events.1006", "< 1%", False, 25 / 125, "20.0 % (25 of 125)"),
        ("close_events.unclean", "== 20%", True, 0.2, "20.0 % (25 of 125)"),
        ("close_events.clean", "== 100", True, 100, "100"),
        ("close_events.1000.clean", ">= 90", True, 90, "90"),
        ("close_events.1000.unclean", "> 0", False, 0, "0"),
        ("close_events.1001", "== 10", True, 10, "10"),
        ("close_events.1005.clean", "== 0", True, 0, "0"),
        ("behaviours.terminate.close_events.1006", "== 100%", True, 1.0, "100.0 % (20 of 20)"),
        ("generator.saturated", "== false", True, 0.0, "false"),
        ("generator.saturated", "== true", False, 0.0, "false"),
    ],
)  # fmt: skip
def test_expressions(expr: str, cond: str, ok: bool, value: float | None, detail: str) -> None:
    v = verdict(expr, cond)
    assert (v.ok, v.detail) == (ok, detail)
    if value is None:
        assert v.value is None
    else:
        assert v.value == pytest.approx(value)
    assert v.expr == expr and v.condition == cond


def test_saturated_generator() -> None:
    data = summary(saturated=True)
    assert verdict("generator.saturated", "== false", data).ok is False
    assert verdict("generator.saturated", "!= false", data).ok is True
    assert verdict("generator.saturated", "== true", data).as_dict()["value"] is True


def test_no_samples_fails_whatever_the_operator() -> None:
    for cond in ("< 1s", "> 1us", "!= 5ms"):
        v = verdict("ping_rtt.p50", cond)
        assert (v.ok, v.value, v.detail) == (False, None, "no samples")
        assert v.as_dict()["value"] is None


def test_overflow_reads_as_at_least_one_hour() -> None:
    data = summary(overflow=True)
    assert data["latency_us"]["session"]["overflow"] == 1
    v = verdict("session.max", "< 2h", data)
    assert v.ok is False and math.isinf(v.value or 0.0)
    assert v.detail == ">= 1 h (1 samples over the 1 h range)"
    assert v.as_dict()["value"] is None
    assert verdict("session.max", "> 1h", data).ok is True
    assert verdict("session.p50", "< 2s", data).ok is True  # rank 50 of 100 is recorded
    assert verdict("session.mean", "< 2s", data).ok is False  # the mean includes 1 h+


def test_figures_missing_from_the_summary_fail_cleanly() -> None:
    other = Threshold(expr="behaviours.gone.outcomes.clean", op=">", value=0.5, unit="share",
                      text="> 50%")  # fmt: skip
    v = evaluate_one(other, SUMMARY)
    assert (v.ok, v.detail) == (False, "no behaviour labelled 'gone' in this run")
    empty = {"totals": {"attempted": 0}, "outcomes": {}}
    v = evaluate_one(Threshold("outcomes.clean", ">", 0.5, "share", "> 50%"), empty)
    assert (v.ok, v.detail) == (False, "no connections attempted")
    v = evaluate_one(Threshold("close_handshake.p99", "<", 5e4, "us", "< 50ms"), empty)
    assert (v.ok, v.detail) == (False, "close_handshake not in the summary")
    v = evaluate_one(Threshold("bogus.thing", "<", 1, "us", "< 1us"), SUMMARY)
    assert (v.ok, v.detail) == (False, "not an expression wsload knows")


def test_evaluate_keeps_order_and_as_dict_shape() -> None:
    thresholds = scenario(
        {"close_handshake.p99": "< 50ms", "outcomes.clean": "> 99%", "outcomes.reset": "== 0"}
    ).thresholds
    verdicts = evaluate(thresholds, SUMMARY)
    assert [v.ok for v in verdicts] == [True, False, True]
    assert verdicts[0].as_dict() == {
        "expr": "close_handshake.p99", "condition": "< 50ms", "unit": "us", "value": 1098,
        "ok": True, "detail": "1.1 ms",
    }  # fmt: skip
    assert verdicts[2].as_dict()["value"] == 0


def test_http_status_thresholds() -> None:
    count = verdict("http_statuses.503", "== 5")
    assert (count.ok, count.detail) == (True, "5")
    share = verdict("http_statuses.503", "< 5%")
    assert (share.ok, share.detail) == (True, "4.0 % (5 of 125)")
    assert verdict("http_statuses.401", "== 0").ok
    assert verdict("behaviours.clean.http_statuses.503", "== 5").ok


def test_subprotocol_thresholds_are_shares_of_opened() -> None:
    data = {**SUMMARY, "totals": {**SUMMARY["totals"], "subprotocols": {"chat": 90, "": 30}}}
    v = verdict("subprotocols.chat", ">= 75%", data)
    assert (v.ok, v.detail) == (True, "75.0 % (90 of 120)")
    assert verdict("subprotocols.none", "== 30", data).ok
    assert not verdict("subprotocols.chat", "== 100%").ok  # not recorded: 0 of 120


def _reconnect_summary(gave_up: int) -> dict[str, Any]:
    """10 logical clients: each lost its first connection (server_closed) and reconnected,
    except ``gave_up`` of them, whose 3 attempts all ended server_closed."""
    audit = ReconnectAudit(ReconnectConfig(on=("server_closed",), max_attempts=3))
    for seq in range(1, 11):
        attempts = 3 if seq <= gave_up else 2
        for attempt in range(1, attempts + 1):
            last = attempt == attempts and seq > gave_up
            start = 10.0 * attempt
            audit.add(
                ConnectionRecord(
                    seq=seq, label="clean", kind="clean", attempt=attempt,
                    outcome=Outcome.CLEAN if last else Outcome.SERVER_CLOSED,
                    scheduled=start, upgraded=start + 0.5, close_received=start + 1.0,
                    socket_closed=start + 1.0,
                )
            )  # fmt: skip
    return {**SUMMARY, "reconnect": audit.as_dict()}


def test_reconnect_thresholds_gate_on_clients_that_gave_up() -> None:
    text = BASE + '[reconnect]\non = ["server_closed"]\nmax_attempts = 3\n[thresholds]\n'

    def judged(expr: str, cond: str, data: dict[str, Any]) -> ThresholdResult:
        parsed = parse_scenario(text + f'"{expr}" = "{cond}"\n', source="t.toml")
        return evaluate_one(parsed.thresholds[0], data)

    bad, good = _reconnect_summary(gave_up=4), _reconnect_summary(gave_up=0)
    assert not judged("reconnect.gave_up", "== 0", bad).ok
    assert judged("reconnect.gave_up", "== 0", good).ok
    share = judged("reconnect.gave_up", "< 10%", bad)
    assert (share.ok, share.detail) == (False, "40.0 % (4 of 10)")
    assert judged("reconnect.clients", "== 10", bad).ok
    assert judged("reconnect.reconnected", "== 100%", bad).ok  # every one came back once
    delay = judged("reconnect.time_to_reconnect.p99", "< 10s", good)
    assert delay.ok and delay.value == pytest.approx(9.5e6, rel=0.01)  # lost at 11 s, up at 20.5 s
    missing = judged("reconnect.gave_up", "== 0", SUMMARY)
    assert (missing.ok, missing.detail) == (False, "no reconnect figures in this run")
