"""report.html from real runs against the built-in server, opened in a real headless Chromium
with the network shut: every chart renders (SVG paths drawn), no console error, no request
leaves the machine; a screenshot of each page is kept in tests/artifacts/.

Chromium comes from Debian (installed by ``tests/browser.py`` when missing and possible); the
browser tests skip with the reason otherwise. The checks on the HTML text itself always run.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import Chromium, chromium_skip_reason
from plotly.offline import get_plotlyjs_version
from shipped import ShippedRuns
from typer.testing import CliRunner

from wsload.cli import app
from wsload.metrics.histograms import new_histogram
from wsload.report.charts import percentile_figure, percentile_points
from wsload.report.html import PLOTLY_JS
from wsload.report.outputs import write_report

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
# a search is many runs in one directory: test_report_of_a_real_capacity_search has it
# deploy_* manage a Node server and hold 1,000 clients: test_deploy_node.py runs them, and
# test_report_of_a_deploy_event_charts_closes_after_the_signal covers their report section.
SHIPPED = sorted(
    p.stem
    for p in (ROOT / "scenarios").glob("*.toml")
    if p.stem != "search" and not p.stem.startswith("deploy_")
)

# What rendered: per plotly chart its title, its trace names and how many SVG paths it drew.
PROBE = """
Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  id: gd.id,
  title: (gd._fullLayout && gd._fullLayout.title && gd._fullLayout.title.text) || '',
  xtype: gd._fullLayout.xaxis.type,
  ticks: gd._fullLayout.xaxis.ticktext || null,
  traces: (gd.data || []).map(t => t.name),
  points: (gd.data || []).reduce((n, t) => n + ((t.y && t.y.length) || 0), 0),
  paths: gd.querySelectorAll('svg.main-svg path').length,
  drawn: gd.querySelectorAll('.scatterlayer .trace path.js-line, .barlayer .point path').length,
  marks: ((gd._fullLayout && gd._fullLayout.shapes) || []).length,
}))
"""
READY = """
(() => {
  const divs = Array.from(document.querySelectorAll('div[id^=chart-]'));
  return divs.length > 0 &&
    divs.every(d => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg'));
})()
"""


@pytest.fixture(scope="session")
def chromium_installed() -> None:
    """Install Debian's chromium once per session when missing (or skip, saying why)."""
    reason = chromium_skip_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium(chromium_installed: None) -> Iterator[Chromium]:
    """One browser for this module's pages, ended with it (no process outlives the module)."""
    with Chromium() as browser:
        yield browser


def _open(chromium: Chromium, report: Path, artifact: str) -> list[dict[str, Any]]:
    page = chromium.load(report.resolve().as_uri(), PROBE, READY)
    chromium.screenshot(ARTIFACTS / f"{artifact}.png")
    assert page.errors == []
    assert page.external_requests == []
    charts: list[dict[str, Any]] = page.rendered
    for chart in charts:
        assert chart["traces"], chart
        assert chart["points"] > 0 and chart["paths"] > 0 and chart["drawn"] > 0, chart
    return charts


@pytest.mark.slow
@pytest.mark.usefixtures("bounded_slow")
@pytest.mark.parametrize("name", SHIPPED)
def test_report_of_each_shipped_scenario_renders(
    shipped_runs: ShippedRuns, chromium: Chromium, name: str
) -> None:
    out = shipped_runs(name).out  # the run the CLI tier checked, when it ran first
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (out / "report.html").stat().st_size <= 1_500_000
    charts = _open(chromium, out / "report.html", f"report-{name}")
    titles = [c["title"] for c in charts]
    by_title = {c["title"]: c for c in charts}
    for metric in ("close_handshake", "close_teardown", "close_total", "server_close_timeout"):
        labels = [
            label for label, b in summary["behaviours"].items() if b["latency_us"][metric]["count"]
        ]
        if labels:
            chart = by_title[f"{metric}: latency by percentile"]
            assert [t.split(" (")[0] for t in chart["traces"] if not t.startswith("all")] == labels
            assert chart["xtype"] == "log" and chart["ticks"][:2] == ["0%", "90%"]
    assert {"rate per interval", "in flight", "outcomes per interval"} <= set(titles)
    assert any(t.startswith("generator lag") for t in titles)
    if any(summary["close_codes"][side] for side in ("sent", "received")):
        assert "close codes sent and received" in titles
    if summary.get("server"):  # the built-in server's side (graphql_ws, socketio use npm servers)
        assert "server side: closes" in titles


@pytest.mark.usefixtures("bounded_slow")
def test_report_of_a_run_where_nothing_connected(tmp_path: Path, chromium: Chromium) -> None:
    """Every connection refused: no latency but connect's, no close codes; the page still
    renders what there is and says what is missing."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scenario = tmp_path / "refused.toml"
    scenario.write_text(
        f'name = "refused"\nseed = 1\n[target]\nurl = "ws://127.0.0.1:{port}/"\n'
        '[load]\nrate = 50\nconnections = 20\n[[close]]\nkind = "clean"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output  # nothing measured is not a pass
    assert "no connection opened: 20 refused (Connection refused)" in result.output
    assert (
        json.loads((out / "summary.json").read_text(encoding="utf-8"))["outcomes"]["refused"] == 20
    )
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "No Close frame was sent or received." in page
    assert 'id="verdict">FAIL</span>' in page
    assert "(nothing_opened)</b>: no connection opened: 20 refused (Connection refused)" in page
    assert "<td>refused</td><td class=n>20</td><td>Connection refused</td>" in page
    charts = _open(chromium, out / "report.html", "report-refused")
    (outcomes,) = [c for c in charts if c["title"] == "outcomes per interval"]
    assert outcomes["traces"] == ["refused"]
    assert not [c for c in charts if c["title"].startswith("close_handshake")]


@pytest.mark.usefixtures("bounded_slow")
def test_report_of_a_deploy_event_charts_closes_after_the_signal(
    tmp_path: Path, chromium: Chromium
) -> None:
    """An event sent to the built-in server (its shutdown storm): the audit's line and its
    chart of closes over time after the signal, one curve per close code."""
    scenario = tmp_path / "event.toml"
    scenario.write_text(
        'name = "event"\nseed = 1\n[target]\nurl = "builtin"\n[target.server]\n'
        'shutdown_grace = "300ms"\n[target.process]\n[[target.process.events]]\nat = "500ms"\n'
        '[load]\nmodel = "storm"\nconcurrency = 30\n'
        '[[close]]\nkind = "await_server_close"\nname = "answers"\nweight = 2\n'
        '[[close]]\nkind = "ignore_server_close"\nname = "mute"\ntimeout = "5s"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Events (shutdown audit)</h2>" in page
    assert "30 open at the signal, 30 (100.0 %) closed clean" in page
    charts = _open(chromium, out / "report.html", "report-event")
    (chart,) = [c for c in charts if c["title"].startswith("event 0: SIGTERM at 0.5 s")]
    assert chart["traces"] == ["1001 Going Away"]
    assert chart["points"] >= 2 and chart["drawn"] >= 1
    # every time chart marks the signal (0.5 s after the start of the load)
    over_time = [c for c in charts if c["title"] in ("in flight", "outcomes per interval")]
    assert len(over_time) == 2 and all(c["marks"] >= 1 for c in over_time)


@pytest.fixture(scope="module")
def quick_run(shipped_runs: ShippedRuns) -> Path:
    return shipped_runs("quickstart").out


@pytest.mark.usefixtures("bounded_slow")
def test_the_quickstart_report_is_small_and_renders_every_chart(
    tmp_path: Path, chromium: Chromium
) -> None:
    """Issue 26's done-when: the shipped quickstart (its own 5 s) gives a report.html of at
    most 1.5 MB (plotly.js's basic bundle, not the full one) whose every chart draws."""
    out = tmp_path / "quickstart"
    args = ["run", str(ROOT / "scenarios" / "quickstart.toml"), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    report = out / "report.html"
    assert report.stat().st_size <= 1_500_000
    text = report.read_text(encoding="utf-8")
    assert '<table id="setup">' in text and "upgrade (HTTP 101)" in text
    assert "<td>1000 (Normal Closure) × 800" in text  # the server table in words
    charts = _open(chromium, report, "report-quickstart-full")
    assert len(charts) >= 6
    bands = [c for c in charts if c["title"] == "close_handshake: percentiles per interval"]
    assert len(bands) == 1 and bands[0]["traces"] == ["p50", "p90", "p99", "max"]


def test_the_vendored_plotly_js_is_the_python_packages_version() -> None:
    """The figures are built by the Python package for its plotly.js: the inlined bundle must
    be that version (wsload/report/vendor/README.md says how to refresh it)."""
    head = PLOTLY_JS.read_text(encoding="utf-8")[:200]
    assert f"plotly.js (basic - minified) v{get_plotlyjs_version()}" in head


@pytest.mark.usefixtures("bounded_slow")
def test_report_is_self_contained_and_escapes_the_run(quick_run: Path, tmp_path: Path) -> None:
    text = (quick_run / "report.html").read_text(encoding="utf-8")
    assert "<script src=" not in text and 'src="http' not in text
    assert text.count("* plotly.js (basic - minified) v") == 1  # inlined once, not per chart
    summary = json.loads((quick_run / "summary.json").read_text(encoding="utf-8"))
    summary["scenario"]["description"] = "<script>alert(1)</script> & co"
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    for name in ("histograms.hlog", "timeline.jsonl"):
        (tmp_path / name).write_bytes((quick_run / name).read_bytes())
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<script>alert(1)" not in page


@pytest.mark.usefixtures("bounded_slow")
def test_report_command_and_bad_input(quick_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(quick_run), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(target) and target.stat().st_size > 1_000_000
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a results directory" in missing.output
    empty = tmp_path / "empty"
    empty.mkdir()
    no_summary = CliRunner().invoke(app, ["report", str(empty)])
    assert no_summary.exit_code == 2 and "summary.json: no such file" in no_summary.output


@pytest.mark.usefixtures("bounded_slow")
def test_capacity_search_section_is_charted(
    quick_run: Path, tmp_path: Path, chromium: Chromium
) -> None:
    """Issue 10's optional ``search`` section (a synthetic one on a real run's files)."""
    summary = json.loads((quick_run / "summary.json").read_text(encoding="utf-8"))
    levels = [
        {"level": level, "ok": ok, "saturated": False, "close_p99_us": p99,
         "clean_share": share, "attempted": int(level * 2)}
        for level, ok, p99, share in [
            (100.0, True, 2_100, 1.0), (200.0, True, 2_900, 0.999),
            (400.0, True, 8_000, 0.995), (800.0, False, 61_000, 0.93),
            (600.0, False, None, None),
        ]
    ]  # fmt: skip
    summary["search"] = {
        "parameter": "rate",
        "capacity": 400.0,
        "reason": "close p99 over 50 ms at 800",
        "levels": levels,
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    for name in ("histograms.hlog", "timeline.jsonl"):
        (tmp_path / name).write_bytes((quick_run / name).read_bytes())
    report = write_report(tmp_path)
    assert "capacity <b>400</b>" in report.read_text(encoding="utf-8")
    charts = _open(chromium, report, "report-search")
    (search,) = [c for c in charts if c["title"] == "capacity search by rate"]
    assert search["traces"] == ["close p99 (ms)", "clean share (%)"]


@pytest.mark.slow
@pytest.mark.usefixtures("bounded_slow")
def test_report_of_a_real_capacity_search(shipped_runs: ShippedRuns, chromium: Chromium) -> None:
    """scenarios/search.toml run for real: one percentile curve per level tried (the hlog's
    totals would mix the passing capacity with the failing overload), and the search chart.
    The search is the session's shipped run (the CLI tier checks its summary), not one more:
    a search is many runs (20-30 s of the suite's time)."""
    run = shipped_runs("search")
    assert run.error is None and run.exit_code in (0, 1), (run.output, run.error)
    out = run.out
    search = json.loads((out / "summary.json").read_text(encoding="utf-8"))["search"]
    charts = _open(chromium, out / "report.html", "report-real-search")
    by_title = {c["title"]: c for c in charts}
    curves = by_title["close_handshake: latency by percentile"]["traces"]
    expected = [f"{lv['level']:g}/s {'pass' if lv['ok'] else 'fail'}" for lv in search["levels"]]
    assert [name.split(" (")[0] for name in curves] == expected
    assert by_title["capacity search by rate"]["traces"] == ["close p99 (ms)", "clean share (%)"]


def test_percentile_curve_follows_the_histogram() -> None:
    """x = 1/(1-p) up to the sample count, y = the histogram's value there (ms), then the max."""
    histogram = new_histogram()
    for value in range(1, 1001):
        histogram.record_value(value * 100)  # 100 µs .. 100 ms, uniform
    xs, ys, ps = percentile_points(histogram)
    assert xs[0] == 1.0 and ps[0] == 0.0 and xs[-1] == 1000 and ps[-1] == 100.0
    assert ys[-1] == pytest.approx(100.0, rel=1e-3) and ys == sorted(ys)
    for x, y, p in zip(xs[:-1], ys[:-1], ps[:-1], strict=True):
        assert p == pytest.approx(100 * (1 - 1 / x))
        assert y == histogram.get_value_at_percentile(p) / 1000
    i99 = min(range(len(xs)), key=lambda i: abs(xs[i] - 100))
    assert xs[i99] == pytest.approx(100) and ys[i99] == pytest.approx(99.0, rel=1e-2)
    figure = percentile_figure("close_handshake", {"clean": histogram})
    assert list(figure.layout.xaxis.ticktext) == ["0%", "90%", "99%", "99.9%"]
    assert percentile_points(new_histogram()) == ([], [], [])
