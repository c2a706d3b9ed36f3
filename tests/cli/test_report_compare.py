"""Baseline comparison on summaries built the real way (records → Collector → build_summary,
thresholds evaluated; searches driven level by level by ``Climb``): improvement, regression,
noise inside the tolerances, too few samples, mismatched scenarios, shares, capacities, and the
JUnit / markdown / CLI outputs that carry the verdicts (and interrupted or saturated runs)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wsload.cli import app
from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.errors import UsageError
from wsload.metrics.collector import Collector
from wsload.metrics.result import RunResult, SegmentResult, new_lag_histogram
from wsload.report.compare.engine import compare
from wsload.report.compare.figures import Histograms
from wsload.report.compare.judge import Verdict
from wsload.report.compare.tolerances import Tolerances, judged_metric
from wsload.report.hlog import format_header, interval_line, make_tag
from wsload.report.junit import junit_xml
from wsload.report.markdown import markdown_report
from wsload.report.outputs import parse_tolerances
from wsload.report.search import level_entry, search_section
from wsload.report.summary import attach_thresholds, build_summary
from wsload.report.terminal import comparison_text
from wsload.report.thresholds import evaluate
from wsload.runner.modes.search import stop_reason
from wsload.runner.modes.search_levels import Climb, Stop, max_levels, worst_case_seconds
from wsload.scenario.model import METRICS
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

SCENARIO = """
name = "cmp"
[load]
rate = 10
duration = "1s"
[[close]]
kind = "clean"
weight = 4
[[close]]
kind = "terminate"
weight = 1
"""


def make_summary(
    *,
    close_us: int = 1000,
    clean: int = 1000,
    timeouts: int = 0,
    terminated: int = 200,
    spread: int = 100,
    scenario: str = SCENARIO,
    saturated: bool = False,
    interrupted: bool = False,
) -> dict[str, Any]:
    """``clean`` clean closes whose handshake takes ``close_us`` .. ``close_us + spread`` µs,
    ``timeouts`` clean-kind connections that timed out, ``terminated`` terminates; the
    scenario's thresholds evaluated as ``wsload run`` does."""
    collector = Collector(labels=("clean", "terminate"), start=0.0)
    seq = 0
    for i in range(clean):
        seq += 1
        rtt = (close_us + i % spread) / 1e6
        collector.add(
            ConnectionRecord(
                seq=seq, label="clean", kind="clean", outcome=Outcome.CLEAN, scheduled=0.0,
                upgraded=0.001, close_initiated=1.0, close_sent=1.0, close_received=1.0 + rtt,
                code_sent=1000, code_received=1000, close_initiator=Side.CLIENT,
                socket_closed=1.0 + rtt + 0.0001,
            )
        )  # fmt: skip
    for _ in range(timeouts):
        seq += 1
        collector.add(
            ConnectionRecord(
                seq=seq, label="clean", kind="clean", outcome=Outcome.CLOSE_TIMEOUT,
                scheduled=0.0, upgraded=0.001, close_initiated=1.0, close_sent=1.0,
                code_sent=1000, close_initiator=Side.CLIENT, socket_closed=6.0,
            )
        )  # fmt: skip
    for _ in range(terminated):
        seq += 1
        collector.add(
            ConnectionRecord(
                seq=seq, label="terminate", kind="terminate", outcome=Outcome.TERMINATED,
                scheduled=0.0, upgraded=0.001, close_initiated=0.5, socket_closed=0.5001,
            )
        )  # fmt: skip
    parsed = parse_scenario(scenario, source="cmp.toml")
    result = RunResult(
        scenario=parsed,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        load=SegmentResult(
            duration_s=1.0,
            collector=collector,
            loop_lag=new_lag_histogram(),
            saturated=saturated,
            interrupted=interrupted,
        ),
    )
    summary = build_summary(result)
    summary = attach_thresholds(summary, evaluate(parsed.thresholds, summary))
    _HISTOGRAMS[id(summary)] = {
        make_tag(metric, label): collector.histogram(metric, label)
        for label in (None, *collector.labels)
        for metric in METRICS
    }
    return summary


_HISTOGRAMS: dict[int, Histograms] = {}
"""Each summary's histograms, as its histograms.hlog gives them to ``wsload compare``."""


def compare_runs(
    base: dict[str, Any], current: dict[str, Any], tol: Tolerances | None = None, **kw: Any
) -> Any:
    """``compare`` as ``wsload compare`` calls it: with both runs' histograms."""
    return compare(
        base, current, tol, baseline_histograms=_HISTOGRAMS.get(id(base)),
        current_histograms=_HISTOGRAMS.get(id(current)), **kw,
    )  # fmt: skip


BASE = make_summary()


def row(result: Any, name: str, scope: str = "total") -> Any:
    (found,) = [r for r in result.rows if r.scope == scope and r.name == name]
    return found


def test_same_run_passes_everything() -> None:
    result = compare_runs(BASE, BASE)
    assert result.ok and result.warnings == ()
    unjudged = {(r.scope, r.name) for r in result.rows if r.verdict is Verdict.INSUFFICIENT}
    # at 99 %, p999 needs 5,296 samples to be bounded and p99 528: not the 200 terminates
    assert unjudged == {
        (r.scope, r.name)
        for r in result.rows
        if r.name.endswith(".p999") or (r.scope == "terminate" and r.name.endswith(".p99"))
    }
    assert {r.verdict for r in result.rows} == {Verdict.WITHIN_NOISE, Verdict.INSUFFICIENT}
    names = {(r.scope, r.name) for r in result.rows}
    assert ("total", "close_handshake.p99") in names and ("clean", "clean share") in names
    assert ("terminate", "close_total.p50") in names
    p99 = row(result, "close_handshake.p99")
    assert p99.method == "interval" and "99 % intervals [" in p99.detail and "overlap" in p99.detail


def test_slower_closes_are_a_regression_with_the_change_in_percent() -> None:
    result = compare_runs(BASE, make_summary(close_us=1600))
    p99 = row(result, "close_handshake.p99")
    assert p99.verdict is Verdict.REGRESSED
    assert p99.baseline == 1098 and p99.current == 1698
    assert p99.change == pytest.approx((1698 - 1098) / 1098)
    assert p99.format_change() == "+54.6 %"
    assert not result.ok and p99 in result.regressions
    assert "apart; +600 µs beyond the floor 500 µs" in p99.detail
    assert row(result, "close_handshake.p99", "clean").verdict is Verdict.REGRESSED
    # the terminate behaviour did not change
    assert row(result, "close_total.p50", "terminate").verdict is Verdict.WITHIN_NOISE


def test_faster_closes_are_an_improvement_not_a_failure() -> None:
    result = compare_runs(BASE, make_summary(close_us=400))
    assert row(result, "close_handshake.p50").verdict is Verdict.IMPROVED
    assert result.ok


def test_noise_within_the_floor_passes() -> None:
    """+50 µs: the intervals are apart (a real change), but far below what matters."""
    result = compare_runs(BASE, make_summary(close_us=1050))  # +4.6 % at p99
    p99 = row(result, "close_handshake.p99")
    assert p99.verdict is Verdict.WITHIN_NOISE
    assert "apart, but +50 µs is within the floor 500 µs" in p99.detail
    assert result.ok


def test_per_metric_tolerance_and_absolute_floor() -> None:
    current = make_summary(close_us=1300)  # +27 %, +300 µs
    no_floor = Tolerances(min_change_us=0)
    assert not compare_runs(BASE, current, no_floor).ok
    loose = Tolerances(min_change_us=0, metric_tolerance={"close_handshake": 0.5,
                                                          "close_total": 0.5})  # fmt: skip
    assert compare_runs(BASE, current, loose).ok
    only_p99 = Tolerances(min_change_us=0, metric_tolerance={"close_handshake.p99": 0.5})
    result = compare_runs(BASE, current, only_p99)
    assert row(result, "close_handshake.p99").verdict is Verdict.WITHIN_NOISE
    assert row(result, "close_handshake.p50").verdict is Verdict.REGRESSED
    assert row(result, "close_handshake.p99").limit == "+50 % / 0 µs"
    # +300 µs is under the default 500 µs floor: noise on a loopback run, whatever the percentage
    assert compare_runs(BASE, current).ok


def test_only_the_chosen_metrics_are_judged_the_others_are_informational() -> None:
    slower = make_summary(close_us=1600)
    result = compare_runs(BASE, slower, Tolerances(metrics=("session",)))
    assert {r.name.split(".")[0] for r in result.rows if r.unit == "us" and r.judged} == {"session"}
    informational = row(result, "close_handshake.p50")
    assert not informational.judged and informational.verdict is Verdict.REGRESSED
    assert informational.verdict_text == "regressed (informational)"
    assert result.ok  # 600 µs more on a ~1 s session is noise
    assert "informational figures changed" in comparison_text(result)
    # by default the close metrics (and step.* metrics) are judged, session is informational
    default = compare_runs(BASE, slower)
    assert not row(default, "session.p50").judged and row(default, "close_total.p50").judged
    assert not default.ok


def test_too_few_samples_are_not_judged() -> None:
    small_base = make_summary(clean=50, terminated=10)
    small_current = make_summary(clean=50, terminated=10, close_us=3000)
    result = compare_runs(small_base, small_current)
    assert row(result, "close_handshake.p99").verdict is Verdict.INSUFFICIENT
    assert "50 vs 50 samples; --min-samples 100" in row(result, "close_handshake.p99").detail
    assert result.ok
    judged = compare_runs(small_base, small_current, Tolerances(min_samples=10))
    assert row(judged, "close_handshake.p50").verdict is Verdict.REGRESSED
    # p99 of 50 samples cannot be bounded: never judged as a percentile, whatever --min-samples
    p99 = row(judged, "close_handshake.p99")
    assert p99.verdict is Verdict.INSUFFICIENT and "too few to bound p99 at 99 %" in p99.detail
    # p999 needs 5,296 samples on both sides at 99 %
    big = make_summary(clean=5300, terminated=0)
    assert row(compare_runs(big, big), "close_handshake.p999").verdict is Verdict.WITHIN_NOISE
    assert row(compare_runs(big, BASE), "close_handshake.p999").verdict is Verdict.INSUFFICIENT


def test_clean_share_drop_and_error_outcome_rise() -> None:
    current = make_summary(clean=990, timeouts=10)  # clean 83.3 % → 82.5 %, timeouts +0.8 pt
    result = compare_runs(BASE, current)
    share = row(result, "clean share", "clean")
    assert share.verdict is Verdict.REGRESSED and share.unit == "share"
    assert share.change == pytest.approx(-1.0)
    assert share.format_change() == "-1.00 pt" and share.limit == "-0.5 pt"
    timeouts = row(result, "outcome close_timeout share", "clean")
    assert timeouts.verdict is Verdict.REGRESSED and timeouts.change == pytest.approx(1.0)
    # terminated is what terminate is for: its share is not an error share
    assert not [r for r in result.rows if r.name == "outcome terminated share"]
    assert "interval of the difference [" in timeouts.detail
    # the timed-out closes took 5 s, but they are 1 % of the closes: no percentile up to p99
    # moved (p999 cannot be bounded with 1,200 samples); the shares are what says it
    lenient = Tolerances(max_share_drop={"clean": 2.0}, max_share_rise={"errors": 2.0})
    assert compare_runs(BASE, current, lenient).ok
    per_outcome = Tolerances(max_share_drop={"clean": 2.0}, max_share_rise={"close_timeout": 2})
    assert compare_runs(BASE, current, per_outcome).ok


def test_mismatched_scenarios_warn_in_every_output_and_still_compare() -> None:
    other = make_summary(scenario=SCENARIO.replace("rate = 10", "rate = 20"), close_us=2000)
    result = compare_runs(BASE, other)
    (warning,) = result.warnings
    assert "different scenarios" in warning and BASE["scenario_hash"] in warning
    assert row(result, "close_handshake.p99").verdict is Verdict.REGRESSED
    assert warning in comparison_text(result)
    assert warning in markdown_report(other, result)
    assert warning in junit_xml(other, result)


def test_saturation_interruption_and_missing_behaviour_are_warnings() -> None:
    text = SCENARIO + '[[close]]\nkind = "clean"\nname = "extra"\nweight = 1\n'
    current = make_summary(scenario=text, saturated=True)
    current["interrupted"] = True
    warnings = compare_runs(BASE, current).warnings
    assert any("current run was saturated" in w for w in warnings)
    assert any("current run was interrupted" in w for w in warnings)
    assert any("'extra' is only in the current run" in w for w in warnings)


def test_junit_has_a_case_per_rule_and_threshold() -> None:
    current = make_summary(close_us=1500)
    current["thresholds"] = [
        {"expr": "close_handshake.p99", "condition": "< 1ms", "unit": "us", "value": 1599,
         "ok": False, "detail": "1.6 ms"},
    ]  # fmt: skip
    result = compare_runs(
        make_summary(clean=50, terminated=10), current, Tolerances(min_samples=10)
    )
    root = ET.fromstring(junit_xml(current, result))
    thresholds, verdict, rules = root.findall("testsuite")
    assert verdict.get("name") == "wsload.verdict.cmp" and verdict.get("failures") == "2"
    assert thresholds.get("tests") == "1" and thresholds.get("failures") == "1"
    assert thresholds.find("testcase/failure") is not None
    cases = rules.findall("testcase")
    assert len(cases) == len(result.rows) == int(rules.get("tests", "0"))
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(failures) == len(result.regressions) == int(rules.get("failures", "0"))
    assert len(skipped) == int(rules.get("skipped", "0")) > 0  # p99/p999 of 50 samples
    names = {(c.get("classname"), c.get("name")) for c in failures}
    assert ("compare.total", "close_handshake.p50") in names


def test_markdown_puts_the_verdict_and_the_regressions_first() -> None:
    slower = make_summary(close_us=1600)
    result = compare_runs(BASE, slower, baseline_name="results/baselines/ci")
    text = markdown_report(slower, result)
    first = text.splitlines()[0]
    assert first == "### ❌ wsload cmp: fail"
    assert "> ❌ **regression** (fail): 12 regressions against results/baselines/ci: " in text
    attention = text.split("<details>")[0]
    assert (
        "| total | `close_handshake.p99` | 1.1 ms | 1.7 ms | +54.6 % | +10 % / 500 µs | "
        "❌ regressed | 99 % intervals [" in attention
    )
    assert "results/baselines/ci" in text
    ok = markdown_report(BASE, compare_runs(BASE, BASE))
    assert ok.startswith("### ✅ wsload cmp: pass") and "within noise" in ok


def test_tolerance_options_parse_and_name_the_flag_on_errors() -> None:
    tol = parse_tolerances(
        max_regression="15%",
        metric_tolerance=["close_handshake.p99=20%", "connect=50"],
        max_share_drop=["clean=1"],
        max_share_rise=["close_timeout=2", "errors=0.25pt"],
        min_samples=10,
        min_change="200us",
        metrics="close_handshake, close_total",
    )
    assert tol.metrics == ("close_handshake", "close_total")
    assert tol.max_regression == pytest.approx(0.15)
    assert tol.latency_limit("close_handshake", "p99") == pytest.approx(0.2)
    assert tol.latency_limit("close_handshake", "p50") == pytest.approx(0.15)
    assert tol.latency_limit("connect", "p50") == pytest.approx(0.5)
    assert tol.rise_limit("close_timeout") == 2 and tol.rise_limit("reset") == 0.25
    assert tol.rise_limit("terminated") is None and tol.drop_limit("clean") == 1
    assert tol.min_change_us == pytest.approx(200) and tol.min_samples == 10
    defaults = parse_tolerances()
    assert defaults.min_change_us == 500 and defaults.confidence == pytest.approx(0.99)
    assert defaults.metrics == ("close_handshake", "close_teardown", "close_total", "step.*")
    steps = parse_tolerances(metrics="step.*,close_total", confidence="95%",
                             metric_tolerance=["step.login.p99=20%"])  # fmt: skip
    assert steps.confidence == pytest.approx(0.95)
    assert steps.latency_limit("step.login", "p99") == pytest.approx(0.2)
    assert judged_metric("step.login", steps.metrics) and not judged_metric(
        "connect", steps.metrics
    )
    for kwargs, flag in [
        ({"max_regression": "ten"}, "--max-regression"),
        ({"max_regression": "-5%"}, "--max-regression"),
        ({"metric_tolerance": ["close_handshak.p99=2%"]}, "--metric-tolerance"),
        ({"metric_tolerance": ["close_handshake.p98=2%"]}, "--metric-tolerance"),
        ({"metric_tolerance": ["close_handshake"]}, "--metric-tolerance"),
        ({"max_share_drop": ["cleanish=1"]}, "--max-share-drop"),
        ({"max_share_rise": ["close_timeout=lots"]}, "--max-share-rise"),
        ({"min_samples": -1}, "--min-samples"),
        ({"min_change": "fast"}, "--min-change"),
        ({"metrics": "close_handshake,close"}, "--metrics"),
        ({"metrics": ","}, "--metrics"),
        ({"confidence": "100%"}, "--confidence"),
        ({"confidence": "sure"}, "--confidence"),
    ]:
        with pytest.raises(UsageError, match=flag):
            parse_tolerances(**kwargs)  # type: ignore[arg-type]


def _write(path: Path, summary: dict[str, Any]) -> Path:
    """A results directory: summary.json and the histograms.hlog ``wsload compare`` reads."""
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    lines = [
        interval_line(tag, 0.0, 1.0, histogram)
        for tag, histogram in _HISTOGRAMS[id(summary)].items()
        if histogram.get_total_count()
    ]
    log = format_header(datetime(2026, 1, 1, tzinfo=UTC)) + "".join(lines)
    (path / "histograms.hlog").write_text(log, encoding="utf-8")
    return path


def test_cli_compare_exit_codes_and_ci_files(tmp_path: Path, monkeypatch: Any) -> None:
    base = _write(tmp_path / "base", BASE)
    slow = _write(tmp_path / "slow", make_summary(close_us=1600))
    step_summary = tmp_path / "step.md"
    step_summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    runner = CliRunner()
    same = runner.invoke(app, ["compare", str(base), str(base / "summary.json")])
    assert same.exit_code == 0, same.output
    assert "0 regressions" not in same.output and ": ok" in same.output
    junit, md = tmp_path / "c.xml", tmp_path / "c.md"
    worse = runner.invoke(
        app, ["compare", str(base), str(slow), "--junit", str(junit), "--markdown", str(md)]
    )
    assert worse.exit_code == 1, worse.output
    assert "regressed  total/close_handshake.p99" in worse.output
    assert ET.parse(junit).getroot().find("testsuite/testcase/failure") is not None
    text = md.read_text(encoding="utf-8")
    assert "❌ regressed" in text
    # the job summary keeps what earlier steps wrote and gets the markdown asked for appended
    assert step_summary.read_text(encoding="utf-8") == "earlier step\n" + text
    again = runner.invoke(app, ["compare", str(base), str(slow), "--markdown", str(step_summary)])
    assert again.exit_code == 1  # naming the step summary itself: appended once, not replaced
    assert step_summary.read_text(encoding="utf-8") == "earlier step\n" + text + text
    as_json = runner.invoke(app, ["compare", str(base), str(slow), "--json", "--max-regression",
                                  "100%"])  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["ok"] is True and data["regressions"] == 0
    assert {r["verdict"] for r in data["rows"]} <= {
        "within noise",
        "improved",
        "insufficient samples",
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nowhere", "no such file"),
        (lambda p: _bad(p, "{not json"), "not valid JSON"),
        (lambda p: _bad(p, '{"x": 1}'), "no schema_version"),
        (lambda p: _bad(p, '{"schema_version": 99}'), "schema_version 99 is not supported"),
    ],
)
def test_cli_compare_bad_input_exits_2(tmp_path: Path, make: Any, message: str) -> None:
    base = _write(tmp_path / "base", BASE)
    result = CliRunner().invoke(app, ["compare", str(base), str(make(tmp_path))])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    bad_flag = CliRunner().invoke(app, ["compare", str(base), str(base), "--max-regression", "x"])
    assert bad_flag.exit_code == 2 and "--max-regression" in bad_flag.output


def _bad(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_committed_baseline_matches_the_ci_scenario(tmp_path: Path) -> None:
    """results/baselines/ci is a run of scenarios/ci.toml as it is now (docs/ci.md): a changed
    scenario needs a refreshed baseline, or every CI comparison would warn."""
    from wsload.report.results import load_results
    from wsload.scenario.dump import scenario_hash
    from wsload.scenario.parse import load_scenario

    root = Path(__file__).resolve().parents[2]
    baseline = load_results(root / "results" / "baselines" / "ci")
    scenario = load_scenario(root / "scenarios" / "ci.toml")
    assert baseline.summary["scenario_hash"] == scenario_hash(scenario)
    assert (
        baseline.totals["close_handshake"].get_total_count()
        == (baseline.summary["latency_us"]["close_handshake"]["count"])
    )
    assert sum(e["attempted"] for e in baseline.timeline) == baseline.summary["totals"]["attempted"]
    same = compare(
        baseline.summary, baseline.summary,
        baseline_histograms=baseline.totals, current_histograms=baseline.totals,
    )  # fmt: skip
    assert same.ok and same.warnings == ()


def test_latencies_past_the_one_hour_range_compare_as_at_least_an_hour() -> None:
    """An overflow (a close that took over 1 h) is not "no samples": up to it is a regression."""
    current = json.loads(json.dumps(BASE))
    current["latency_us"]["close_handshake"].update(
        p99=3_600_000_000, p999=3_600_000_000, max=3_600_000_000
    )
    result = compare_runs(BASE, current)
    p99 = row(result, "close_handshake.p99")
    assert p99.verdict is Verdict.REGRESSED and p99.change is None
    assert p99.detail.startswith("1.1 ms → >= 1 h: past the 1 h range")
    assert p99.as_dict()["current"] is None  # strict JSON: no Infinity
    json.dumps(result.as_dict(), allow_nan=False)
    assert row(compare_runs(current, current), "close_handshake.p99").verdict is (
        Verdict.WITHIN_NOISE
    )
    assert row(compare_runs(current, BASE), "close_handshake.p99").verdict is Verdict.IMPROVED


SEARCH = """
name = "cmp-search"
[load]
model = "search"
[load.search]
over = "rate"
start = 100
factor = 2
max = 800
precision = "5%"
[[close]]
kind = "clean"
weight = 4
[[close]]
kind = "terminate"
weight = 1
[thresholds]
"close_handshake.p99" = "< 2ms"
"""


def make_search(
    knee: float, *, text: str = SEARCH, interrupt_after: int = 0, saturate_at: float = 0
) -> dict[str, Any]:
    """A capacity search's summary, put together as ``wsload search`` does: ``Climb`` picks
    the levels, each level's summary is a real one (closes take 1 ms up to ``knee``, 3 ms
    above: the 2 ms threshold fails; the generator saturated at ``saturate_at``), the main
    level's figures fill the summary."""
    scenario = parse_scenario(text, source="search.toml")
    search = scenario.load.search
    assert search is not None
    climb = Climb(search)
    entries: list[dict[str, Any]] = []
    summaries: dict[float, dict[str, Any]] = {}
    while (level := climb.next_level()) is not None:
        summaries[level] = make_summary(
            close_us=1000 if level <= knee else 3000, scenario=text, saturated=level == saturate_at
        )
        entries.append(level_entry(level, summaries[level], started_s=2.0 * len(entries)))
        if entries[-1]["saturated"]:
            climb.stop(Stop.SATURATED)
        else:
            climb.record(level, entries[-1]["ok"])
        if len(entries) == interrupt_after:
            climb.stop(Stop.INTERRUPTED)
    main = climb.passed if climb.passed is not None else entries[0]["level"]
    data = dict(summaries[main])
    _HISTOGRAMS[id(data)] = _HISTOGRAMS[id(summaries[main])]
    if climb.stopped is Stop.INTERRUPTED:
        data["interrupted"] = True
    data["search"] = search_section(
        search.over, entries, climb.passed, str(climb.stopped),
        stop_reason(search, climb, entries[-1]["level"]), max_levels=max_levels(search),
        worst_case_s=worst_case_seconds(scenario.load), main_level=main,
    )  # fmt: skip
    return data


def junit_cases(xml: str) -> dict[tuple[str | None, str | None], ET.Element]:
    return {(c.get("classname"), c.get("name")): c for c in ET.fromstring(xml).iter("testcase")}


def test_an_interrupted_run_is_inconclusive_though_its_thresholds_held() -> None:
    gated = SCENARIO + '[thresholds]\n"close_handshake.p99" = "< 2ms"\n'
    partial = make_summary(scenario=gated, interrupted=True)
    assert [t["ok"] for t in partial["thresholds"]] == [True]
    root = ET.fromstring(junit_xml(partial))
    thresholds, verdict = root.findall("testsuite")
    assert thresholds.get("failures") == "0" and verdict.get("failures") == "1"
    cases = junit_cases(junit_xml(partial))
    assert ("verdict", "inconclusive") in cases
    failure = cases[("verdict", "interrupted")].find("failure")
    assert failure is not None and "interrupted before its planned end" in failure.get(
        "message", ""
    )
    text = markdown_report(partial)
    assert text.startswith("### ⚠️ wsload cmp: inconclusive\n")
    assert "> ⚠️ **interrupted** (inconclusive): the run was interrupted before its planned" in text
    # the complete run of the same scenario: green, no reason
    complete = make_summary(scenario=gated)
    assert ("verdict", "interrupted") not in junit_cases(junit_xml(complete))
    assert ("verdict", "pass") in junit_cases(junit_xml(complete))
    assert markdown_report(complete).startswith("### ✅ wsload cmp: pass")


def test_a_saturated_generator_makes_a_gated_run_inconclusive() -> None:
    gate = SCENARIO + '[thresholds]\n"close_handshake.p99" = "< 2ms"\n'
    saturated = make_summary(scenario=gate, saturated=True)
    case = junit_cases(junit_xml(saturated))[("verdict", "saturated")]
    failure = case.find("failure")
    assert failure is not None and "describe wsload, not the target" in failure.get("message", "")
    text = markdown_report(saturated)
    assert text.startswith("### ⚠️ wsload cmp: inconclusive\n")
    assert "> ⚠️ **saturated** (inconclusive): the load generator was saturated: the" in text
    # nothing gated (no threshold, no baseline): nothing to be inconclusive about
    assert markdown_report(make_summary(saturated=True)).startswith("### ✅ wsload cmp: pass")
    # a generator.saturated threshold is the verdict on it: its failure, no second reason
    gated = make_summary(
        scenario=SCENARIO + '[thresholds]\n"generator.saturated" = "== false"\n', saturated=True
    )
    cases = junit_cases(junit_xml(gated))
    assert ("verdict", "saturated") not in cases
    assert cases[("thresholds", "generator.saturated == false")].find("failure") is not None
    assert markdown_report(gated).startswith("### ❌ wsload cmp: fail\n")
    # a comparison with a saturated current run: the warning, and the verdict inconclusive
    ungated = make_summary(saturated=True)
    result = compare_runs(BASE, ungated)
    assert result.ok and any("current run was saturated" in w for w in result.warnings)
    assert ("verdict", "saturated") in junit_cases(junit_xml(ungated, result))


def test_a_lower_capacity_is_a_regression_of_its_own_row() -> None:
    base, lower, close = make_search(300), make_search(250), make_search(290)
    assert base["search"]["stopped"] == "converged" and base["search"]["capacity"] > 250
    result = compare_runs(base, lower)
    capacity = row(result, "capacity", "search")
    assert capacity.verdict is Verdict.REGRESSED and capacity in result.regressions
    assert (capacity.baseline, capacity.current) == (
        base["search"]["capacity"], lower["search"]["capacity"]
    )  # fmt: skip
    assert capacity.unit == "rate" and capacity.limit == "-10 %"
    assert capacity.format_value(300) == "300/s" and capacity.format_change().startswith("-")
    assert "(converged) →" in capacity.detail
    # the other figures are those of each main level: a warning says they are different loads
    (warning,) = result.warnings
    assert "main levels differ" in warning and "different loads" in warning
    assert f"{base['search']['main_level']:g}/s" in warning
    assert row(compare_runs(lower, base), "capacity", "search").verdict is Verdict.IMPROVED
    # within --max-regression: passes; a tighter tolerance catches it
    near = row(compare_runs(base, close), "capacity", "search")
    assert near.verdict is Verdict.WITHIN_NOISE and -0.10 < near.change < 0
    tight = Tolerances(max_regression=-near.change / 2)
    assert row(compare_runs(base, close, tight), "capacity", "search").verdict is Verdict.REGRESSED
    same = compare_runs(base, base)
    assert same.ok and same.warnings == ()
    assert row(same, "capacity", "search").verdict is Verdict.WITHIN_NOISE
    assert "search/capacity" in comparison_text(result) and "| search | `capacity` |" in (
        markdown_report(lower, result)
    )
    failed = junit_cases(junit_xml(lower, result))[("compare.search", "capacity")]
    assert failed.find("failure") is not None


def test_no_capacity_at_all_is_the_worst_capacity() -> None:
    none = make_search(50)  # the first level (100/s) already fails
    assert none["search"]["capacity"] is None and none["search"]["stopped"] == "first_failed"
    assert (
        row(compare_runs(make_search(300), none), "capacity", "search").verdict is Verdict.REGRESSED
    )
    assert (
        row(compare_runs(none, make_search(300)), "capacity", "search").verdict is Verdict.IMPROVED
    )
    neither = row(compare_runs(none, none), "capacity", "search")
    assert neither.verdict is Verdict.MISSING and neither.format_value(neither.current) == "-"
    assert "capacity **none** (first_failed: the first level (100) already failed" in (
        markdown_report(none)
    )


def test_a_search_against_a_single_run_or_another_parameter_warns() -> None:
    search = make_search(300)
    level = f"{search['search']['main_level']:g}/s"
    for result, side in (
        (compare_runs(BASE, search), "current"),
        (compare_runs(search, BASE), "baseline"),
    ):
        assert not [r for r in result.rows if r.scope == "search"]
        (warning,) = [w for w in result.warnings if "capacity search" in w]
        assert f"the {side} run is a capacity search" in warning and level in warning
    storm_text = SEARCH.replace('over = "rate"', 'over = "storm_size"')
    result = compare_runs(search, make_search(300, text=storm_text))
    assert not [r for r in result.rows if r.scope == "search"]
    assert any("different parameters (rate vs storm_size)" in w for w in result.warnings)


def test_an_interrupted_search_is_a_lower_bound_and_fails_its_junit() -> None:
    cut = make_search(300, interrupt_after=2)  # 100/s and 200/s passed, then Ctrl-C
    assert cut["search"]["stopped"] == "interrupted" and cut["interrupted"] is True
    result = compare_runs(make_search(300), cut)
    assert row(result, "capacity", "search").verdict is Verdict.REGRESSED
    assert any("current run was interrupted" in w for w in result.warnings)
    failure = junit_cases(junit_xml(cut, result))[("verdict", "interrupted")].find("failure")
    assert failure is not None and "capacity is a lower bound" in failure.get("message", "")
    text = markdown_report(cut, result)
    assert "Capacity search over rate: capacity **200/s** (interrupted:" in text
    assert "the main level, 200/s." in text


def test_a_search_stopped_by_saturation_warns_its_capacity_is_a_lower_bound() -> None:
    stopped = make_search(300, saturate_at=400)  # 100/s and 200/s passed, 400/s saturated
    assert stopped["search"]["stopped"] == "saturated" and stopped["search"]["capacity"] == 200
    result = compare_runs(make_search(300), stopped)
    assert row(result, "capacity", "search").verdict is Verdict.REGRESSED
    assert "the current search stopped on a saturated generator: its capacity is a lower bound" in (
        result.warnings
    )
    # the main level (200/s) itself was not saturated: no run case, the warning carries it
    xml = junit_xml(stopped, result)
    assert ("verdict", "saturated") not in junit_cases(xml) and "lower bound" in xml
