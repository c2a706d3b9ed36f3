"""The live ``/metrics`` endpoint (``--metrics-port``): what it exports, that a scrape at the end
equals summary.json, that it lives exactly as long as the run, and the Grafana dashboard.

Tiers: the exposition fed real collector snapshots (no network); the endpoint itself on
loopback; whole ``wsload run`` processes scraped by an HTTP client and parsed by
``prometheus_client``'s own parser; and, where Debian's ``prometheus`` can be installed, a real
Prometheus server scraping a run every second, queried through its HTTP API afterwards.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from clusters import local_cluster
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_server import Prometheus, free_port, prometheus_skip_reason
from records import clean_record, terminated_record
from typer.testing import CliRunner
from verdicts import assert_passed_or_saturated, summary_of

from wsload.cli import app
from wsload.metrics.collector import Collector
from wsload.metrics.counts import MESSAGE_COUNTERS
from wsload.metrics.histograms import new_histogram, record
from wsload.metrics.snapshots import IntervalSnapshot
from wsload.report.prometheus import NETWORK_BUCKETS_S, Exposition
from wsload.runner.endpoint import MetricsEndpoint, serve_metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
PUBSUB = Path(__file__).resolve().parents[2] / "scenarios" / "pubsub.toml"

SCENARIO = """
name = "prom"
seed = 7
[target]
url = "builtin"
[target.server]
close_reply_delay = "2ms"
[load]
model = "arrival"
rate = 60
duration = "3s"
[session]
messages = 1
[[close]]
kind = "clean"
weight = 3
code = 1000
timeout = "5s"
[[close]]
kind = "terminate"
weight = 1
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels (``prometheus_client``'s parser)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def _count_series(metric: str, behaviour: str) -> tuple[str, dict[str, str]]:
    """The ``_count`` sample of latency ``metric``: a dotted one (``step.subscribe``) is the
    prefix's family with the rest as label (``wsload_step_seconds_count{step="subscribe"}``)."""
    prefix, dot, rest = metric.partition(".")
    labels = {"behaviour": behaviour, **({prefix: rest} if dot else {})}
    return f"wsload_{prefix}_seconds_count", labels


def _exposed(exposition: Exposition) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exposition)
    return generate_latest(registry).decode()


# --- the exposition, fed real snapshots ------------------------------------------------------


def _collector_run() -> tuple[Collector, Exposition]:
    """Two intervals of a collector (clean and terminated records) observed by an exposition."""
    collector = Collector(("clean", "terminate"), start=0.0)
    exposition = Exposition()
    lag = new_histogram()
    for us in (50, 900, 30_000):
        record(lag, us)
    for second in range(2):
        for seq in range(5):
            t = second + seq / 10
            collector.add(clean_record(seq, t=t, close_rtt=0.0004 * (seq + 1)))
            collector.add(terminated_record(seq, t=t))
        collector.add_dropped(second)
        exposition.observe(
            collector.take_interval(3, now=second + 1.0, loop_lag=lag, saturated=second == 1)
        )
    return collector, exposition


def test_counters_and_histograms_equal_the_collector_they_came_from() -> None:
    collector, exposition = _collector_run()
    samples = _samples(_exposed(exposition))
    for label in ("clean", "terminate"):
        counts = collector.counts(label)
        outcomes = {
            dict(k)["outcome"]: v
            for k, v in _series(samples, "wsload_connections_total").items()
            if dict(k)["behaviour"] == label
        }
        assert outcomes == counts.outcomes
        for direction, codes in (("sent", counts.codes_sent), ("received", counts.codes_received)):
            for code, n in codes.items():
                got = _get(
                    samples,
                    "wsload_close_codes_total",
                    behaviour=label,
                    direction=direction,
                    code=str(code),
                )
                assert got == n
        for (code, clean), n in counts.close_events.items():
            labels = {"code": str(code), "was_clean": "true" if clean else "false"}
            assert _get(samples, "wsload_close_events_total", behaviour=label, **labels) == n
        for metric in ("connect", "handshake", "close_handshake", "close_total", "session"):
            count = _get(samples, f"wsload_{metric}_seconds_count", behaviour=label)
            assert count == collector.stats(metric, label)["count"], (label, metric)
    # close_handshake of clean: 0.4, 0.8, 1.2, 1.6, 2.0 ms, twice: cumulative buckets by bound
    buckets = {
        dict(k)["le"]: v
        for k, v in _series(samples, "wsload_close_handshake_seconds_bucket").items()
    }
    assert buckets["0.0005"] == 2 and buckets["0.001"] == 4 and buckets["0.0025"] == 10
    assert buckets["+Inf"] == 10 and len(buckets) == len(NETWORK_BUCKETS_S) + 1
    total = _get(samples, "wsload_close_handshake_seconds_sum", behaviour="clean")
    assert total == pytest.approx(2 * 0.006, rel=1e-3)
    assert _get(samples, "wsload_connections_dropped_total") == 1
    assert _get(samples, "wsload_connections_intended_total") == 20 + 1 + 3  # + in flight
    assert _get(samples, "wsload_connections_in_flight") == 3
    assert _get(samples, "wsload_generator_saturated") == 1
    assert _get(samples, "wsload_generator_loop_lag_seconds_count") == 6
    assert _get(samples, "wsload_generator_loop_lag_seconds_bucket", le="0.02") == 4


def test_new_metrics_and_counters_appear_without_code_changes() -> None:
    """The metric set is data: a dotted latency metric (session scripts' ``step.<name>``),
    a counter field the collector may grow, and an over-1-h sample all show up."""
    histogram = new_histogram()
    for us in (3_000, 40_000):
        record(histogram, us)
    snapshot = IntervalSnapshot(
        index=0,
        start=0.0,
        end=1.0,
        in_flight=0,
        attempted=2,
        opened=2,
        dropped=0,
        outcomes={"clean": 2},
        histograms={"step.subscribe": histogram},
        by_label={"chat": {"step.subscribe": histogram}},
        overflow={"session": 1},
        counters={
            "chat": {
                "outcomes.clean": 2,
                "messages.messages_received": 7,
                "events.restart": 1,
                "reconnects": 3,
                "overflow.session": 1,
            }
        },
    )
    exposition = Exposition()
    exposition.observe(snapshot)
    text = _exposed(exposition)
    samples = _samples(text)
    labels = {"behaviour": "chat", "step": "subscribe"}
    assert _get(samples, "wsload_step_seconds_count", **labels) == 2
    assert _get(samples, "wsload_step_seconds_bucket", le="0.005", **labels) == 1
    # the message counters: one family each, all of them once one moved (0 is exported as 0)
    for name in MESSAGE_COUNTERS:
        want = 7 if name == "messages_received" else 0
        assert samples[(f"wsload_{name}_total", frozenset({("behaviour", "chat")}))] == want
    assert _get(samples, "wsload_events_total", behaviour="chat", key="restart") == 1
    assert _get(samples, "wsload_reconnects_total", behaviour="chat") == 3
    # the sample over 1 h is in +Inf only, and counted, as summary.json counts it
    assert _get(samples, "wsload_session_seconds_count", behaviour="chat") == 1
    assert _get(samples, "wsload_session_seconds_bucket", behaviour="chat", le="120.0") == 0
    assert _get(samples, "wsload_latency_overflow_total", behaviour="chat", metric="session") == 1
    assert "# TYPE wsload_step_seconds histogram" in text


# --- the endpoint on loopback ----------------------------------------------------------------


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.usefixtures("bounded_sync")
def test_the_endpoint_serves_waits_for_a_final_scrape_and_closes() -> None:
    with serve_metrics(MetricsEndpoint(port=0)) as exposition:
        port = int(exposition.url.rsplit(":", 1)[1].split("/")[0])
        assert exposition.url == f"http://127.0.0.1:{port}/metrics"
        assert exposition.wait_scraped(0.0)  # nothing observed yet: nothing to wait for
        exposition.observe(_one_interval())
        assert not exposition.wait_scraped(0.3)  # observed, never scraped: bounded
        before = time.monotonic()
        assert "wsload_connections_total" in _scrape(exposition.url)
        assert exposition.wait_scraped(5.0)
        assert time.monotonic() - before < 5.0
        assert exposition.wait_scraped(0.0, stop=lambda: True)  # nothing new since
    assert _refused(port)


def _one_interval() -> IntervalSnapshot:
    collector = Collector(start=0.0)
    collector.add(clean_record(1))
    return collector.take_interval(now=1.0)


@pytest.mark.usefixtures("bounded_sync")
@pytest.mark.parametrize("command", ["run", "search"])
def test_a_port_in_use_exits_2_before_anything_is_written(tmp_path: Path, command: str) -> None:
    scenario = tmp_path / "s.toml"
    shipped = Path(__file__).resolve().parents[2] / "scenarios" / "search.toml"
    scenario.write_text(shipped.read_text() if command == "search" else SCENARIO)
    out = tmp_path / "out"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app, [command, str(scenario), "--out", str(out), "--metrics-port", str(port)]
        )
    assert result.exit_code == 2, result.output
    assert f"--metrics-port {port}: cannot serve metrics on 127.0.0.1:{port}" in result.output
    assert "address already in use" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing started, nothing written


# --- whole runs, scraped -----------------------------------------------------------------------


def _run(tmp_path: Path, port: int, *extra: str, scenario: str = SCENARIO) -> subprocess.Popen[str]:
    path = tmp_path / "s.toml"
    path.write_text(scenario, encoding="utf-8")
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "wsload", "run", str(path), "--out", str(tmp_path / "out")),
            *("--quiet", "--no-report", "--metrics-port", str(port), *extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], out: Path) -> str:
    """Wait for the run; it passed, or (on a busy machine) its only fault is a saturated
    generator, which makes a run with thresholds inconclusive (exit 1)."""
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (out / "summary.json").exists(), err
    assert_passed_or_saturated(proc.returncode, summary_of(out), err)
    return err


def _scrape_until_closed(proc: subprocess.Popen[str], url: str) -> list[Samples]:
    """Scrape every 0.1 s from the start of ``proc`` until the endpoint is gone."""
    scrapes: list[Samples] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            scrapes.append(_samples(_scrape(url)))
        except (urllib.error.URLError, ConnectionError):
            if scrapes or proc.poll() is not None:
                break  # it was up and is gone, or it never came
        time.sleep(0.1)
    return scrapes


def _assert_equals_summary(samples: Samples, summary: Mapping[str, Any]) -> None:
    """Counters and histogram counts of the final scrape are summary.json's, exactly."""
    totals = summary["totals"]
    assert _get(samples, "wsload_connections_intended_total") == totals["intended"]
    assert _get(samples, "wsload_connections_dropped_total") == totals["dropped"]
    assert _get(samples, "wsload_connections_in_flight") == 0
    for label, behaviour in summary["behaviours"].items():
        outcomes = {
            dict(k)["outcome"]: v
            for k, v in _series(samples, "wsload_connections_total").items()
            if dict(k)["behaviour"] == label
        }
        assert outcomes == {o: n for o, n in behaviour["outcomes"].items() if n}, label
        assert (
            _get(samples, "wsload_connections_opened_total", behaviour=label)
            == (behaviour["opened"])
        )
        for direction, codes in behaviour["close_codes"].items():
            for code, n in codes.items():
                labels = {"behaviour": label, "direction": direction, "code": code}
                assert _get(samples, "wsload_close_codes_total", **labels) == n
        for metric, stats in behaviour["latency_us"].items():
            name, labels = _count_series(metric, label)
            assert _get(samples, name, **labels) == stats["count"], (label, metric)
        for counter in MESSAGE_COUNTERS:
            got = _get(samples, f"wsload_{counter}_total", behaviour=label)
            assert got == behaviour[counter], (label, counter)
    generator = summary["generator"]
    assert (
        _get(samples, "wsload_generator_loop_lag_seconds_count")
        == (generator["loop_lag_us"]["count"])
    )
    assert _get(samples, "wsload_generator_saturated") == int(generator["saturated"])


WORKERS = pytest.mark.parametrize(
    "workers", [pytest.param("1", id="one-process"), pytest.param("2", marks=pytest.mark.slow)]
)


def _scraped_run(
    tmp_path: Path, workers: str, scenario: str = SCENARIO
) -> tuple[list[Samples], dict[str, Any]]:
    """A whole run scraped every 0.1 s until its endpoint closed: the scrapes, summary.json."""
    port = free_port()
    proc = _run(
        tmp_path, port, *("--workers", workers, "--metrics-linger", "10s"), scenario=scenario
    )
    scrapes = _scrape_until_closed(proc, f"http://127.0.0.1:{port}/metrics")
    err = _finish(proc, tmp_path / "out")
    assert f"wsload: metrics at http://127.0.0.1:{port}/metrics" not in err  # --quiet
    assert _refused(port)  # closed with the run
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    return scrapes, summary


@pytest.mark.usefixtures("bounded_slow")
@WORKERS
def test_scrapes_follow_the_run_and_the_last_equals_summary_json(
    tmp_path: Path, workers: str
) -> None:
    scrapes, summary = _scraped_run(tmp_path, workers)
    ended = [sum(_series(s, "wsload_connections_total").values()) for s in scrapes]
    assert ended == sorted(ended)  # counters only grow
    assert any(0 < n < summary["totals"]["attempted"] for n in ended), ended  # live, mid-run
    _assert_equals_summary(scrapes[-1], summary)
    clean = summary["behaviours"]["clean"]
    assert clean["latency_us"]["close_handshake"]["count"] == clean["attempted"] > 0
    assert clean["messages_sent"] == clean["attempted"]  # [session] messages = 1


@pytest.mark.usefixtures("bounded_slow")
@pytest.mark.slow
def test_a_cluster_run_serves_its_tasks_merged_seconds_while_they_run(tmp_path: Path) -> None:
    """``--cluster`` (a Dask ``LocalCluster`` of 2 worker processes): each merged second is
    served as the tasks report it, not only when their results come back at the end, and the
    last scrape equals summary.json."""
    with local_cluster() as cluster:
        port = free_port()
        text = SCENARIO.replace('duration = "3s"', 'duration = "6s"')
        args = ("--cluster", cluster.scheduler_address, "--metrics-linger", "10s")
        proc = _run(tmp_path, port, *args, scenario=text)
        scrapes = _scrape_until_closed(proc, f"http://127.0.0.1:{port}/metrics")
        _finish(proc, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["generator"]["processes"] == 2
    ended = [sum(_series(s, "wsload_connections_total").values()) for s in scrapes]
    assert ended == sorted(ended)  # counters only grow
    # live: several partial counts while the 6 s schedule ran, not one jump at the end
    partial = {n for n in ended if 0 < n < summary["totals"]["attempted"]}
    assert len(partial) >= 2, ended
    _assert_equals_summary(scrapes[-1], summary)


@pytest.mark.usefixtures("bounded_slow")
@WORKERS
def test_a_scripted_run_exports_its_step_histograms_and_message_counters(
    tmp_path: Path, workers: str
) -> None:
    """scenarios/pubsub.toml (session script against the built-in pubsub app): the final
    scrape has ``step.subscribe`` and every message counter, each equal to summary.json."""
    scrapes, summary = _scraped_run(tmp_path, workers, PUBSUB.read_text(encoding="utf-8"))
    last = scrapes[-1]
    _assert_equals_summary(last, summary)
    behaviour = summary["behaviours"]["await_server_close"]
    step = {"behaviour": "await_server_close", "step": "subscribe"}
    assert _get(last, "wsload_step_seconds_count", **step) == behaviour["attempted"] > 0
    assert _get(last, "wsload_step_seconds_bucket", le="+Inf", **step) == behaviour["attempted"]
    assert behaviour["messages_received"] >= 6 * behaviour["attempted"]  # ack + 5 pushes
    for name in MESSAGE_COUNTERS:  # every one a series, messages_unmatched (0) included
        series = _series(last, f"wsload_{name}_total")
        assert series == {frozenset({("behaviour", "await_server_close")}): behaviour[name]}


# --- a real Prometheus -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus_installed() -> None:
    reason = prometheus_skip_reason()
    if reason is not None:
        pytest.skip(reason)


def _instant(prom: Prometheus, expr: str) -> Samples:
    out: Samples = {}
    for row in prom.query(expr):
        labels = {k: v for k, v in row["metric"].items() if k not in ("job", "instance")}
        name = labels.pop("__name__", expr)
        out[(name, frozenset(labels.items()))] = float(row["value"][1])
    return out


def _last_values(prom: Prometheus) -> Samples:
    """The last scraped value of every wsload series (stale markers are skipped in ranges)."""
    out: Samples = {}
    for name in [
        "wsload_connections_total",
        "wsload_connections_opened_total",
        "wsload_connections_intended_total",
        "wsload_connections_dropped_total",
        "wsload_connections_in_flight",
        "wsload_close_codes_total",
        "wsload_generator_saturated",
        "wsload_generator_loop_lag_seconds_count",
        *(f"wsload_{m}_seconds_count" for m in ("connect", "handshake", "close_handshake")),
        *(f"wsload_{m}_seconds_count" for m in ("close_teardown", "close_total", "session")),
        *(f"wsload_{m}_seconds_count" for m in ("message_rtt",)),
        *(f"wsload_{name}_total" for name in MESSAGE_COUNTERS),
    ]:
        for (_, labels), value in _instant(prom, f"last_over_time({name}[10m])").items():
            out[(name, labels)] = value
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("prometheus_installed", "bounded_slow")
def test_a_real_prometheus_scraping_every_second_ends_with_summary_json(tmp_path: Path) -> None:
    port = free_port()
    with Prometheus(port) as prom:
        prom.wait_first_scrape()
        proc = _run(tmp_path, port)  # default linger: waits for Prometheus's last scrape
        _finish(proc, tmp_path / "out")
        summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
        deadline = time.monotonic() + 10
        intended = summary["totals"]["intended"]
        while time.monotonic() < deadline:  # the last scrape is being stored
            last = _last_values(prom)
            if _get(last, "wsload_connections_intended_total") == intended:
                break
            time.sleep(0.2)
        scraped = _instant(prom, "count_over_time(wsload_connections_intended_total[10m])")
        assert sum(scraped.values()) >= 3, prom.log_tail()  # scraped while the run went
        _assert_equals_summary(last, summary)
        _check_dashboard_queries(prom)


def _check_dashboard_queries(prom: Prometheus) -> None:
    """Every dashboard query is valid PromQL for this Prometheus and finds the run: evaluated
    at the last scrape of the run, with Grafana's variables filled in."""
    (series,) = prom.query("wsload_connections_in_flight[10m]")  # raw samples, timestamped
    at = float(series["values"][-1][0])
    for panel, expr in _dashboard_queries():
        query = expr.replace("$__rate_interval", "3s").replace("$job", ".*")
        assert prom.query(query, at), (panel, query)


# --- the Grafana dashboard ---------------------------------------------------------------------


def _panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _panels(item.get("panels", []))  # rows hold panels


def _dashboard_queries() -> Iterator[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_the_dashboard_imports_as_is_and_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard.get("id") is None  # import assigns it
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    templated = {"type": "prometheus", "uid": "${datasource}"}
    panels = list(_panels(dashboard["panels"]))
    assert len({p["id"] for p in panels}) == len(panels)
    _, exposition = _collector_run()
    exported = {name for name, _ in _samples(_exposed(exposition))}
    queries: list[str] = []
    for panel in panels:
        assert panel["datasource"] == templated, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", templated) == templated, panel["title"]
            names = set(re.findall(r"\bwsload_\w+", target["expr"]))
            assert names and names <= exported, (panel["title"], names - exported)
            queries.append(target["expr"])
    text = "\n".join(queries)
    for wanted in (  # what the issue asks the dashboard to show
        "rate(wsload_connections_intended_total",
        "sum by (outcome) (rate(wsload_connections_total",
        "histogram_quantile(0.5, sum by (le, behaviour) (rate(wsload_close_handshake_seconds",
        "histogram_quantile(0.99, sum by (le, behaviour) (rate(wsload_close_handshake_seconds",
        "wsload_connections_in_flight",
        "wsload_generator_loop_lag_seconds_bucket",
    ):
        assert wanted in text, wanted


@pytest.mark.usefixtures("bounded_sync")
def test_repeat_refuses_an_endpoint(tmp_path: Path) -> None:
    """Each --repeat run is a result of its own: one endpoint would not equal any of them."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(scenario), "--repeat", "2", "--metrics-port", "0"])
    assert result.exit_code == 2, result.output
    assert "--metrics-port" in result.output and "Traceback" not in result.output


@pytest.mark.usefixtures("bounded_slow")
def test_the_final_wait_for_a_scrape_is_announced_and_bounded(tmp_path: Path) -> None:
    """Nobody scrapes: after the results the command says why it has not returned yet, and
    returns once ``--metrics-linger`` has passed."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.replace('duration = "3s"', 'duration = "1s"'), encoding="utf-8")
    argv = [sys.executable, "-m", "wsload", "run", str(scenario), "--out", str(tmp_path / "out")]
    argv += ["--no-report", "--metrics-port", "0", "--metrics-linger", "1.5s"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    url = re.search(r"wsload: metrics at (http://127\.0\.0\.1:\d+/metrics)\n", proc.stderr)
    assert url is not None, proc.stderr
    waiting = f"wsload: serving the final figures at {url[1]} for up to 1.5 s, until a scrape"
    assert waiting in proc.stderr, proc.stderr
    assert "results:" in proc.stdout
