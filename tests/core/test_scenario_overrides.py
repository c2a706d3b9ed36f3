"""Load models, ``apply_overrides`` (``run --duration/--rate``) and ``parse_server_options``
(``wsload serve`` flags through the same rules as ``[target.server]``)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from wsload.errors import UsageError
from wsload.plan.schedule import planned_end
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import Delay, LoadConfig, Scenario, ServerConfig, Stage
from wsload.scenario.overrides import apply_overrides
from wsload.scenario.parse import parse_scenario, parse_server_options

pytestmark = pytest.mark.usefixtures("bounded_sync")


def load(body: str) -> Scenario:
    return parse_scenario("[load]\n" + body + "\n", source="o.toml")


# --- load models -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('rate = 200\nduration = "5s"', LoadConfig(rate=200.0, duration=5.0)),
        ("rate = 50\nconnections = 100", LoadConfig(rate=50.0, connections=100)),
        (
            'stages = [{ duration = "2s", rate = 100 }, { duration = "1s", rate = 0 }]',
            LoadConfig(stages=(Stage(2.0, rate=100.0), Stage(1.0, rate=0.0))),
        ),
        (
            'rate = 10\nduration = "9s"\nstages = [{ duration = "2s", rate = 100 }]',
            LoadConfig(rate=10.0, duration=9.0, stages=(Stage(2.0, rate=100.0),)),
        ),
        (
            'model = "concurrency"\nconcurrency = 20\nduration = "3s"',
            LoadConfig(model="concurrency", concurrency=20, duration=3.0),
        ),
        (
            'model = "concurrency"\nconcurrency = 20\nconnections = 500',
            LoadConfig(model="concurrency", concurrency=20, connections=500),
        ),
        (
            'model = "concurrency"\nstages = [{ duration = "2s", concurrency = 30 }]',
            LoadConfig(model="concurrency", stages=(Stage(2.0, concurrency=30),)),
        ),
        ('model = "storm"\nconcurrency = 300', LoadConfig(model="storm", concurrency=300)),
        (
            'model = "storm"\nconcurrency = 300\nrate = 150\nopen_deadline = "5s"',
            LoadConfig(model="storm", concurrency=300, rate=150.0, open_deadline=5.0),
        ),
    ],
)
def test_load_models(body: str, expected: LoadConfig) -> None:
    assert load(body).load == expected


# --- apply_overrides -----------------------------------------------------------------------------

ARRIVAL = load('rate = 100\nduration = "10s"')
RAMP = load('stages = [{ duration = "2s", rate = 100 }, { duration = "3s", rate = 300 }]')
CLOSED = load('model = "concurrency"\nconcurrency = 5\nduration = "10s"')
STORM = load('model = "storm"\nconcurrency = 50')


def test_no_override_changes_nothing() -> None:
    for scenario in (ARRIVAL, RAMP, CLOSED, STORM):
        assert apply_overrides(scenario) == scenario


def test_duration_override() -> None:
    assert apply_overrides(ARRIVAL, duration=2.5).load == LoadConfig(rate=100.0, duration=2.5)
    assert apply_overrides(CLOSED, duration=1.0).load.duration == 1.0
    ramp = apply_overrides(RAMP, duration=10.0).load
    assert ramp.stages == RAMP.load.stages and ramp.duration == 10.0  # last stage's rate holds


def test_rate_override_replaces_the_stages_and_keeps_their_length() -> None:
    assert apply_overrides(ARRIVAL, rate=7.0).load == LoadConfig(rate=7.0, duration=10.0)
    flat = apply_overrides(RAMP, rate=50.0).load
    assert flat == LoadConfig(rate=50.0, duration=5.0)
    assert planned_end(flat) == planned_end(RAMP.load) == 5.0
    both = apply_overrides(RAMP, rate=50.0, duration=1.0).load
    assert both == LoadConfig(rate=50.0, duration=1.0)
    assert apply_overrides(STORM, rate=25.0).load.rate == 25.0  # the storm's opening rate


@pytest.mark.parametrize(
    ("scenario", "kwargs", "message"),
    [
        (ARRIVAL, {"duration": 0.0}, "--duration must be a finite duration > 0, got 0.0"),
        (ARRIVAL, {"duration": -1.0}, "--duration must be a finite duration > 0, got -1.0"),
        (ARRIVAL, {"duration": math.inf}, "--duration must be a finite duration > 0, got inf"),
        (ARRIVAL, {"duration": math.nan}, "--duration must be a finite duration > 0, got nan"),
        (STORM, {"duration": 5.0}, "--duration does not apply to the storm model"),
        (ARRIVAL, {"rate": 0.0}, "--rate must be a finite number > 0, got 0.0"),
        (ARRIVAL, {"rate": -3.0}, "--rate must be a finite number > 0, got -3.0"),
        (ARRIVAL, {"rate": math.nan}, "--rate must be a finite number > 0, got nan"),
        (ARRIVAL, {"rate": math.inf}, "--rate must be a finite number > 0, got inf"),
        (CLOSED, {"rate": 10.0}, "--rate does not apply to the concurrency model"),
    ],
)
def test_override_misuse_is_a_usage_error(
    scenario: Scenario, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(UsageError) as info:
        apply_overrides(scenario, **kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "kwargs", [{"duration": 3.0}, {"rate": 9.0}, {"duration": 2.0, "rate": 4.0}]
)
def test_an_overridden_scenario_still_round_trips(kwargs: dict[str, float]) -> None:
    for scenario in (ARRIVAL, RAMP):
        changed = apply_overrides(scenario, **kwargs)
        assert parse_scenario(scenario_to_toml(changed), source="o.toml") == changed


# --- parse_server_options ------------------------------------------------------------------------

CLI_DEFAULTS: dict[str, Any] = {  # what `wsload serve` passes when no flag is given
    "messages": "echo",
    "close_reply": "normal",
    "close_reply_delay": "0s",
    "close_after": None,
    "close_after_messages": None,
    "close_code": 1000,
    "close_reason": "",
    "close_action": "close",
    "close_timeout": "30s",
    "reject_share": 0.0,
    "reject_status": 503,
    "upgrade_delay": "0s",
    "shutdown_after": None,
    "shutdown_code": 1001,
    "shutdown_grace": "10s",
    "compression": "none",
}


def test_serve_defaults_are_the_model_defaults() -> None:
    assert parse_server_options(CLI_DEFAULTS) == ServerConfig()
    assert parse_server_options({}) == ServerConfig()


def test_serve_options_use_the_scenario_rules() -> None:
    config = parse_server_options(
        {
            **CLI_DEFAULTS,
            "close_reply": "never",
            "close_reply_delay": {"min": "10ms", "max": "50ms"},
            "close_after": "2s",
            "close_after_messages": 3,
            "close_code": 4001,
            "close_timeout": "2s",
            "reject_share": 0.25,
            "upgrade_delay": "5ms",
            "shutdown_after": "1m",
            "shutdown_grace": "0s",
            "compression": "deflate",
        }
    )
    assert config == ServerConfig(
        close_reply="never",
        close_reply_delay=Delay(0.01, 0.05),
        close_after=2.0,
        close_after_messages=3,
        close_code=4001,
        close_timeout=2.0,
        reject_share=0.25,
        upgrade_delay=Delay(0.005, 0.005),
        shutdown_after=60.0,
        shutdown_grace=0.0,
        compression="deflate",
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("close_code", 1005, "--close-code: 1005 may not be sent in a Close frame"),
        ("shutdown_code", 999, "--shutdown-code: 999 may not be sent"),
        ("close_reply", "mute", "--close-reply: expected one of 'normal', 'never', 'drop'"),
        ("close_reply_delay", {"min": "5ms", "max": "1ms"}, "--close-reply-delay: max: must be >="),
        ("close_timeout", "0s", "--close-timeout: must be > 0, got '0s'"),
        ("close_after", "soon", '--close-after: expected a duration like "250ms"'),
        ("close_after_messages", 0, "--close-after-messages: must be >= 1, got 0"),
        ("reject_share", 2.0, "--reject-share: must be a fraction between 0 and 1, got 2.0"),
        ("reject_status", 101, "--reject-status: expected an HTTP status 200-599 other than 101"),
        ("close_reason", "x" * 124, "--close-reason: must be at most 123 UTF-8 bytes, got 124"),
        ("shutdown_grace", "-1s", "--shutdown-grace: expected a duration"),
        ("compression", "gzip", "--compression: expected one of 'none', 'deflate'"),
        ("bogus", 1, "--bogus: unknown key"),
    ],
)
def test_serve_option_errors_name_the_flag(option: str, value: object, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_server_options({**CLI_DEFAULTS, option: value})
    assert str(info.value).startswith(message), str(info.value)
