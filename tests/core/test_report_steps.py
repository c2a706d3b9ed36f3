"""``step.<name>``, ``push_interval`` and the message counters through every layer: collector
(wire form and merge), summary.json, hlog tags, thresholds and compare."""

from __future__ import annotations

from datetime import UTC, datetime

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.metrics.collector import Collector
from wsload.metrics.counts import MESSAGE_COUNTERS
from wsload.metrics.result import RunResult, SegmentResult, new_lag_histogram
from wsload.report.compare.engine import compare
from wsload.report.hlog import format_interval
from wsload.report.summary import build_summary
from wsload.report.thresholds import evaluate
from wsload.scenario.parse import parse_scenario

SCENARIO = parse_scenario(
    """
[load]
rate = 10
connections = 4
[[session.steps]]
send = "sub"
[[session.steps]]
expect = { any = true }
name = "ack"
[[session.steps]]
expect = { any = true }
name = "never"
[thresholds]
"step.ack.p99" = "< 10ms"
"step.ack.count" = "== 4"
"behaviours.clean.step.ack.max" = "< 1ms"
""",
    environ={},
)


def _record(seq: int, ack: float) -> ConnectionRecord:
    return ConnectionRecord(
        seq=seq, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=0.0,
        step_latencies=(("step.ack", ack),), push_intervals=(0.1, 0.2),
        messages_sent=2, messages_received=4, bytes_sent=10, bytes_received=40,
        messages_unmatched=1,
    )  # fmt: skip


def _collector(scale: float = 1.0) -> Collector:
    c = Collector(labels=("clean",), start=0.0)
    for seq in range(1, 5):
        c.add(_record(seq, 0.002 * seq * scale))
    return c


def _summary(c: Collector) -> dict[str, object]:
    result = RunResult(
        scenario=SCENARIO,
        started_at=datetime(2026, 12, 1, tzinfo=UTC),
        load=SegmentResult(
            duration_s=1.0,
            collector=c,
            loop_lag=new_lag_histogram(),
            cpu_seconds=0.1,
            processes=1,
            intervals=1,
        ),
    )
    return build_summary(result)


def test_summary_has_step_metrics_and_message_totals() -> None:
    s = _summary(_collector())
    latency = s["latency_us"]
    assert isinstance(latency, dict)
    assert latency["step.ack"]["count"] == 4 and latency["step.ack"]["max"] == 8003  # 3 digits
    assert latency["step.never"]["count"] == 0 and latency["step.never"]["p50"] is None
    assert latency["push_interval"]["count"] == 8
    totals = s["totals"]
    assert isinstance(totals, dict)
    assert [totals[name] for name in MESSAGE_COUNTERS] == [8, 16, 40, 160, 4, 0, 0]
    behaviour = s["behaviours"]["clean"]  # type: ignore[index]
    assert behaviour["latency_us"]["step.ack"]["count"] == 4
    assert behaviour["messages_received"] == 16


def test_thresholds_measure_step_metrics() -> None:
    s = _summary(_collector())
    verdicts = {v.expr: v.ok for v in evaluate(SCENARIO.thresholds, s)}
    assert verdicts == {
        "step.ack.p99": True,
        "step.ack.count": True,
        "behaviours.clean.step.ack.max": False,
    }


def test_wire_form_and_merge_keep_steps_and_counters_exactly() -> None:
    a, b = _collector(), _collector(2.0)
    back = Collector.from_wire(a.to_wire())
    assert back.stats("step.ack") == a.stats("step.ack")
    assert back.counts().messages == a.counts().messages
    back.merge(b)
    assert back.stats("step.ack")["count"] == 8
    assert back.counts().messages["messages_received"] == 32
    old = a.to_wire()
    for entry in old["labels"].values():
        del entry["messages"]  # a collector from before the counters existed
    assert Collector.from_wire(old).counts().messages["bytes_sent"] == 0


def test_hlog_tags_step_metrics_per_behaviour() -> None:
    snapshot = _collector().take_interval(now=1.0)
    tags = {line.split(",", 1)[0] for line in format_interval(snapshot, 0.0).splitlines()}
    assert {"Tag=step.ack", "Tag=step.ack:clean", "Tag=push_interval"} <= tags


def test_compare_judges_step_metrics_by_default() -> None:
    base, cur = _summary(_collector()), _summary(_collector(3.0))
    rows = [r for r in compare(base, cur).rows if r.name.startswith("step.ack.")]
    assert {r.scope for r in rows} == {"total", "clean"}
    assert rows and all(r.current is not None for r in rows)
