"""``[target.process]``, ``[[target.process.events]]`` and ``[reconnect]``: parsed into frozen
config, written back by the resolved copy, and every mistake reported as ``file: key: message``."""

from __future__ import annotations

import pytest

from wsload.errors import ScenarioError
from wsload.report.redact import REDACTED, redact_scenario
from wsload.report.thresholds import evaluate
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import Backoff, ProcessConfig, ProcessEvent, ReconnectConfig, Scenario
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

ISSUE_EXAMPLE = """
[target]
url = "ws://127.0.0.1:{port}/"
[target.process]
command = ["node", "server.js", "--port", "{port}"]
env = { NODE_ENV = "production" }
port = 0
ready_timeout = "10s"
restart = true
stop_signal = "SIGTERM"; stop_timeout = "10s"
[[target.process.events]]
at = "10s"
signal = "SIGTERM"
[load]
model = "storm"
concurrency = 10
[reconnect]
on = ["server_closed", "abnormal", "refused", "reset", "handshake_rejected"]
backoff = { initial = "100ms", max = "10s", multiplier = 2, jitter = "full" }
max_attempts = 20
""".replace("; stop_timeout", "\nstop_timeout")


def parse(text: str) -> Scenario:
    return parse_scenario(text, source="d.toml", default_name="d")


def test_issue_example_parses_into_frozen_config() -> None:
    scenario = parse(ISSUE_EXAMPLE)
    assert scenario.target.process == ProcessConfig(
        command=("node", "server.js", "--port", "{port}"),
        env=(("NODE_ENV", "production"),),
        port=0,
        ready_timeout=10.0,
        restart=True,
        max_restarts=10,
        stop_signal="SIGTERM",
        stop_timeout=10.0,
        events=(ProcessEvent(at=10.0, signal="SIGTERM"),),
    )
    assert scenario.reconnect == ReconnectConfig(
        on=("server_closed", "abnormal", "refused", "reset", "handshake_rejected"),
        backoff=Backoff(initial=0.1, max=10.0, multiplier=2.0, jitter="full"),
        max_attempts=20,
    )


def test_resolved_copy_parses_back_equal_and_env_is_redacted() -> None:
    scenario = parse(ISSUE_EXAMPLE)
    assert parse(scenario_to_toml(scenario)) == scenario
    shown = redact_scenario(scenario)
    assert shown.target.process is not None
    assert shown.target.process.env == (("NODE_ENV", REDACTED),)
    assert "production" not in scenario_to_toml(shown)


def test_builtin_target_takes_events_only() -> None:
    text = (
        '[target.process]\n[[target.process.events]]\nat = "1s"\n'
        "[load]\nrate = 1\nconnections = 2\n"
    )
    scenario = parse(text)
    assert scenario.target.process == ProcessConfig(events=(ProcessEvent(at=1.0),))
    assert parse(scenario_to_toml(scenario)) == scenario


def test_defaults() -> None:
    text = '[reconnect]\n[load]\nrate = 1\nduration = "2s"\n'
    assert parse(text).reconnect == ReconnectConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\nport = 0\n',
            "d.toml: target.process.command: required",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = []\n',
            "d.toml: target.process.command: expected a non-empty argv list",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = "node s.js"\n',
            "d.toml: target.process.command: expected a list of strings, got 'node s.js'",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:9/"\n[target.process]\ncommand = ["x"]\n',
            "d.toml: target.process.port: 0 lets wsload pick a free port: write {port}",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n',
            "d.toml: target.url: {port} is only filled in for a managed server",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = ["x"]\n'
            "port = 70000\n",
            "d.toml: target.process.port: must be 0-65535, got 70000",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = ["x"]\n'
            'stop_signal = "SIGTREM"\n',
            "d.toml: target.process.stop_signal: expected one of 'SIGTERM', 'SIGINT', 'SIGHUP', "
            "'SIGUSR1', 'SIGUSR2', 'SIGKILL', got 'SIGTREM' (did you mean 'SIGTERM'?)",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = ["x"]\n'
            "env = { A = 1 }\n",
            "d.toml: target.process.env.A: expected a string without NUL (the value is not shown)",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\n'
            'command = ["x", "a\\u0000"]\n',
            "d.toml: target.process.command[1]: contains a NUL character",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = ["x"]\n'
            'ready_line = "listening on ("\n',
            "d.toml: target.process.ready_line: invalid regular expression: missing ), "
            "unterminated subpattern at position 13",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = ["x"]\n'
            "ready_line = 1\n",
            "d.toml: target.process.ready_line: expected a string, got 1",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:{port}/"\n[target.process]\ncommand = ["x"]\n'
            "restrat = true\n",
            "d.toml: target.process.restrat: unknown key (did you mean 'restart'?)",
        ),
        (
            '[target.process]\ncommand = ["x"]\n',
            'd.toml: target.process.command: not used with url = "builtin"',
        ),
        (
            '[target.process]\n[[target.process.events]]\nsignal = "SIGTERM"\n',
            "d.toml: target.process.events[0].at: required",
        ),
        (
            '[target.process]\n[[target.process.events]]\nat = "1s"\nsignal = "SIGKILL"\n',
            "d.toml: target.process.events[0].signal: the built-in server answers an event",
        ),
        (
            '[target.process]\n[[target.process.events]]\nat = "2s"\n'
            '[[target.process.events]]\nat = "1s"\n',
            "d.toml: target.process.events[1].at: events must be in time order",
        ),
        (
            '[reconnect]\non = ["server_close"]\n',
            "d.toml: reconnect.on[0]: expected an outcome",
        ),
        (
            '[reconnect]\nbackoff = { jitter = "half" }\n',
            "d.toml: reconnect.backoff.jitter: expected one of 'full', 'equal', 'none', got 'half'",
        ),
        (
            '[reconnect]\nbackoff = { initial = "2s", max = "1s" }\n',
            "d.toml: reconnect.backoff.max: must be >= initial ('2s')",
        ),
        (
            "[reconnect]\nbackoff = { multiplier = 0.5 }\n",
            "d.toml: reconnect.backoff.multiplier: must be 1-100, got 0.5",
        ),
        ("[reconnect]\nmax_attempts = 0\n", "d.toml: reconnect.max_attempts: must be >= 1, got 0"),
    ],
)
def test_mistakes_name_file_key_and_expectation(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(text + '\n[load]\nrate = 1\nduration = "2s"\n' if "[load]" not in text else text)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("events.x.closed_clean", "expected events.<index>.<open_at_signal|closed_clean|"),
        ("events.0.closed_clear", "(did you mean 'closed_clean'?)"),
        ("events.0.eof.p100", "expected events.<index>"),
        ("events.0", "expected events.<index>"),
    ],
)
def test_event_threshold_expressions_are_checked(expr: str, message: str) -> None:
    text = f'[load]\nrate = 1\nconnections = 1\n[thresholds]\n"{expr}" = "> 1"\n'
    with pytest.raises(ScenarioError) as caught:
        parse(text)
    assert f"d.toml: thresholds.{expr}: " in str(caught.value)
    assert message in str(caught.value)


def test_event_thresholds_are_measured_against_open_at_signal() -> None:
    text = (
        "[load]\nrate = 1\nconnections = 1\n[thresholds]\n"
        '"events.0.closed_clean" = "> 99%"\n"events.0.close_received.p99" = "< 2s"\n'
        '"events.0.still_open_at_exit" = "== 0"\n"events.1.closed_clean" = "> 1"\n'
    )
    thresholds = parse(text).thresholds
    summary = {
        "events": [
            {
                "pid": 7,
                "open_at_signal": 200,
                "closed_clean": 199,
                "still_open_at_exit": 0,
                "latency_us": {"close_received": {"count": 200, "p99": 2_500_000}},
            }
        ]
    }
    verdicts = evaluate(thresholds, summary)
    assert [(v.ok, v.detail) for v in verdicts] == [
        (True, "99.5 % (199 of 200)"),
        (False, "2.5 s"),
        (True, "0"),
        (False, "no event 1 in this run (1 events)"),
    ]
    summary["events"][0]["pid"] = None
    assert not evaluate(thresholds[:1], summary)[0].ok
