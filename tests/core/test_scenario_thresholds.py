"""``[thresholds]``: every expression form, every unit, and the errors a typo gets."""

from __future__ import annotations

import pytest

from wsload.core.outcomes import Outcome
from wsload.errors import ScenarioError
from wsload.scenario.model import METRICS, STATS, Threshold
from wsload.scenario.parse import parse_scenario

SOURCE = "t.toml"
HEAD = (
    '[load]\nrate = 10\nduration = "1s"\n'
    '[[close]]\nkind = "clean"\n'
    '[[close]]\nkind = "terminate"\nname = "rst"\nrst = true\n'
)


pytestmark = pytest.mark.usefixtures("bounded_sync")


def thresholds(body: str) -> tuple[Threshold, ...]:
    return parse_scenario(HEAD + "[thresholds]\n" + body + "\n", source=SOURCE).thresholds


def one(expr: str, cond: str) -> Threshold:
    (threshold,) = thresholds(f'"{expr}" = "{cond}"')
    return threshold


def error(body: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        thresholds(body)
    assert str(info.value).startswith(f"{SOURCE}: {info.value.key}: ")
    return info.value


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("stat", [s for s in STATS if s != "count"])
def test_every_metric_and_latency_stat(metric: str, stat: str) -> None:
    expr = f"{metric}.{stat}"
    assert one(expr, "< 50ms") == Threshold(expr, "<", 50_000.0, "us", "< 50ms")


@pytest.mark.parametrize("metric", METRICS)
def test_metric_count_is_a_count_or_a_share_of_attempted(metric: str) -> None:
    expr = f"{metric}.count"
    assert one(expr, ">= 100") == Threshold(expr, ">=", 100.0, "count", ">= 100")
    assert one(expr, "> 99%") == Threshold(expr, ">", 0.99, "share", "> 99%")


@pytest.mark.parametrize(
    ("cond", "micros"),
    [
        ("< 50ms", 50_000.0),
        ("<= 1.5s", 1_500_000.0),
        ("> 250us", 250.0),
        ("< 250µs", 250.0),
        ("< 2m", 120_000_000.0),
        ("< 1m30s", 90_000_000.0),
        ("<0.1ms", 100.0),
        ("  <  5 ms  ", 5_000.0),
        ("< 0.5us", 0.5),
    ],
)
def test_latency_units_become_microseconds(cond: str, micros: float) -> None:
    threshold = one("close_handshake.p99", cond)
    assert (threshold.value, threshold.unit, threshold.text) == (micros, "us", cond.strip())


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_every_operator(op: str) -> None:
    assert one("connect.max", f"{op} 1s").op == op
    assert one("outcomes.clean", f"{op} 5").op == op


@pytest.mark.parametrize("outcome", [o.value for o in Outcome])
def test_every_outcome_as_count_and_share(outcome: str) -> None:
    expr = f"outcomes.{outcome}"
    assert one(expr, "== 0") == Threshold(expr, "==", 0.0, "count", "== 0")
    assert one(expr, "> 99.5%") == Threshold(expr, ">", 0.995, "share", "> 99.5%")


@pytest.mark.parametrize("direction", ["sent", "received"])
@pytest.mark.parametrize("code", ["1000", "1006", "4999", "0", "65535"])
def test_close_code_counters(direction: str, code: str) -> None:
    expr = f"close_codes.{direction}.{code}"
    assert one(expr, "== 0") == Threshold(expr, "==", 0.0, "count", "== 0")
    assert one(expr, "< 1%").unit == "share"


@pytest.mark.parametrize("code", ["01000", "1e3", "abc", "65536", "١٠٠٠", "+1000", ""])
def test_close_codes_are_written_plainly(code: str) -> None:
    exc = error(f'"close_codes.received.{code}" = "== 0"')
    assert exc.message.startswith("expected a close code 0-65535 written plainly")


@pytest.mark.parametrize(
    "expr", ["close_codes.recieved.1000", "close_codes.1000", "close_codes.sent.1000.x"]
)
def test_close_code_shape(expr: str) -> None:
    exc = error(f'"{expr}" = "== 0"')
    assert exc.message == "expected close_codes.sent.<code> or close_codes.received.<code>"


@pytest.mark.parametrize(
    "expr",
    ["close_events.1006", "close_events.1000.clean", "close_events.4000.unclean",
     "close_events.unclean", "close_events.clean"],
)  # fmt: skip
def test_close_event_counters(expr: str) -> None:
    assert one(expr, "== 0") == Threshold(expr, "==", 0.0, "count", "== 0")
    assert one(expr, "< 1%").unit == "share"


@pytest.mark.parametrize(
    "expr",
    ["close_events", "close_events.1006.x", "close_events.1006.clean.x", "close_events.clean.1000",
     "close_events.clean.unclean", "close_events.1000.1001"],
)  # fmt: skip
def test_close_event_shape(expr: str) -> None:
    exc = error(f'"{expr}" = "== 0"')
    assert "close_events." in exc.message, exc.message


@pytest.mark.parametrize("code", ["01006", "1e3", "65536", "clean1"])
def test_close_event_codes_are_written_plainly(code: str) -> None:
    exc = error(f'"close_events.{code}" = "== 0"')
    assert exc.message.startswith("expected a close code 0-65535 written plainly")


def test_generator_saturated_is_a_boolean() -> None:
    assert one("generator.saturated", "== false") == Threshold(
        "generator.saturated", "==", 0.0, "bool", "== false"
    )
    assert one("generator.saturated", "!= true").value == 1.0
    exc = error('"generator.saturated" = "< 1"')
    assert exc.message == 'expected "== false" or "== true", got \'< 1\''
    exc = error('"generator.lag" = "== false"')
    assert exc.message == "expected generator.saturated (the only generator threshold)"


def test_behaviour_scoped_expressions() -> None:
    got = thresholds(
        '"behaviours.clean.close_handshake.p99" = "< 20ms"\n'
        '"behaviours.rst.outcomes.terminated" = "> 99%"\n'
        '"behaviours.clean.close_codes.received.1000" = ">= 1"\n'
    )
    assert [(t.expr, t.unit, t.value) for t in got] == [
        ("behaviours.clean.close_handshake.p99", "us", 20_000.0),
        ("behaviours.rst.outcomes.terminated", "share", 0.99),
        ("behaviours.clean.close_codes.received.1000", "count", 1.0),
    ]


def test_dotted_keys_and_nested_tables_mean_the_same_as_quoted_keys() -> None:
    quoted = thresholds(
        '"close_handshake.p99" = "< 50ms"\n"behaviours.clean.close_total.max" = "< 1s"\n'
    )
    dotted = thresholds(
        'close_handshake.p99 = "< 50ms"\n[thresholds.behaviours.clean]\nclose_total.max = "< 1s"\n'
    )
    assert dotted == quoted


def test_deeply_dotted_keys_are_an_error_not_a_crash() -> None:
    exc = error("[thresholds." + ".".join(["a"] * 5000) + ']\nb = "< 1s"')
    assert exc.key == "thresholds." + "a." * 5000 + "b"
    assert exc.message.startswith("unknown metric 'a'")


def test_a_threshold_given_twice_is_an_error() -> None:
    exc = error('"outcomes.clean" = "> 1"\noutcomes.clean = "> 2"')
    assert (exc.key, exc.message) == (
        "thresholds.outcomes.clean",
        "given twice (once quoted, once as a dotted key)",
    )


def test_thresholds_keep_file_order() -> None:
    got = thresholds('"session.max" = "< 9s"\n"connect.p50" = "< 1ms"\n"outcomes.clean" = "> 1"')
    assert [t.expr for t in got] == ["session.max", "connect.p50", "outcomes.clean"]


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ('"close_handshak.p99" = "< 1s"', "close_handshak.p99", "did you mean 'close_handshake'?"),
        (
            '"behavior.clean.connect.p99" = "< 1s"',
            "behavior.clean.connect.p99",
            "did you mean 'behaviours'?",
        ),
        ('"outcome.clean" = "> 1"', "outcome.clean", "did you mean 'outcomes'?"),
        (
            '"connect.p95" = "< 1s"',
            "connect.p95",
            "expected <metric>.<stat> with stat one of count",
        ),
        ('"connect" = "< 1s"', "connect", "expected <metric>.<stat>"),
        ('"connect.p99.x" = "< 1s"', "connect.p99.x", "expected <metric>.<stat>"),
        ('"outcomes.cleen" = "> 1"', "outcomes.cleen", "did you mean 'clean'?"),
        ('"outcomes" = "> 1"', "outcomes", "expected outcomes.<outcome> with one of 'clean'"),
        (
            '"behaviours.cleen.connect.p99" = "< 1s"',
            "behaviours.cleen.connect.p99",
            "no close behaviour labelled 'cleen' (did you mean 'clean'?)",
        ),
        ('"behaviours.clean" = "< 1s"', "behaviours.clean", "expected behaviours.<label>."),
        ('"connect.p99" = "< 50"', "connect.p99", 'a latency needs a unit, e.g. "< 50ms"'),
        ('"connect.p99" = "50ms"', "connect.p99", 'expected a condition like "< 50ms"'),
        ('"connect.p99" = "= 50ms"', "connect.p99", 'expected a condition like "< 50ms"'),
        ('"connect.p99" = "< fast"', "connect.p99", "got 'fast' in '< fast'"),
        ('"connect.p99" = "< -5ms"', "connect.p99", "in '< -5ms'"),
        ('"connect.p99" = 50', "connect.p99", 'expected a condition string like "< 50ms"'),
        ('"connect.p99" = ["< 1s"]', "connect.p99", "got a list"),
        ('"outcomes.clean" = "> 101%"', "outcomes.clean", "expected a percentage 0-100%"),
        ('"outcomes.clean" = "> -1%"', "outcomes.clean", "expected a percentage 0-100%"),
        ('"outcomes.clean" = "> x%"', "outcomes.clean", "expected a percentage 0-100%"),
        ('"outcomes.clean" = "> -1"', "outcomes.clean", "expected a count >= 0"),
        ('"outcomes.clean" = "> many"', "outcomes.clean", "expected a count >= 0"),
        ('"outcomes.clean" = "> nan"', "outcomes.clean", "expected a count >= 0"),
        ('"outcomes.clean" = "< 5ms"', "outcomes.clean", "expected a count >= 0"),
        ("[thresholds.connect]", "connect", "expected a condition string"),
    ],
)
def test_bad_thresholds_are_explained(body: str, key: str, message: str) -> None:
    exc = error(body)
    assert exc.key == f"thresholds.{key}"
    assert message in exc.message, exc.message


def test_thresholds_must_be_a_table() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("thresholds = 5\n" + HEAD, source=SOURCE)
    assert str(info.value) == "t.toml: thresholds: expected a table, got 5"


@pytest.mark.parametrize(
    ("expr", "cond", "unit"),
    [
        ("http_statuses.401", "== 100%", "share"),
        ("http_statuses.503", "< 5", "count"),
        ("behaviours.rst.http_statuses.401", "== 0", "count"),
        ("subprotocols.graphql-transport-ws", "== 100%", "share"),
        ("subprotocols.none", "== 0", "count"),
    ],
)
def test_what_the_server_answered(expr: str, cond: str, unit: str) -> None:
    assert one(expr, cond).unit == unit


RECONNECT = '[reconnect]\non = ["server_closed"]\n'


@pytest.mark.parametrize(
    ("expr", "cond", "unit"),
    [
        ("reconnect.gave_up", "== 0", "count"),
        ("reconnect.gave_up", "< 1%", "share"),
        ("reconnect.clients", ">= 500", "count"),
        ("reconnect.reconnected", "> 99%", "share"),
        ("reconnect.time_to_reconnect.p99", "< 2s", "us"),
        ("reconnect.reconnect_delay.max", "< 10s", "us"),
        ("reconnect.time_to_reconnect.count", "> 90%", "share"),
    ],
)
def test_reconnect_thresholds(expr: str, cond: str, unit: str) -> None:
    text = HEAD + RECONNECT + f'[thresholds]\n"{expr}" = "{cond}"\n'
    (threshold,) = parse_scenario(text, source=SOURCE).thresholds
    assert threshold.unit == unit


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ('"reconnect.gave_up" = "== 0"', "reconnect.gave_up", "needs a [reconnect] table"),
        ('"http_statuses.40" = "== 0"', "http_statuses.40", "expected http_statuses.<status>"),
        ('"http_statuses" = "== 0"', "http_statuses", "expected http_statuses.<status>"),
        ('"subprotocols.a.b" = "== 0"', "subprotocols.a.b", "expected subprotocols.<name>"),
    ],
)
def test_bad_answer_and_reconnect_thresholds(body: str, key: str, message: str) -> None:
    exc = error(body)
    assert exc.key == f"thresholds.{key}"
    assert message in exc.message, exc.message


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("reconnect.gaveup", "did you mean 'gave_up'?"),
        ("reconnect.time_to_reconnect.p95", "expected reconnect.<clients|reconnected|gave_up>"),
        ("reconnect", "expected reconnect.<"),
    ],
)
def test_bad_reconnect_thresholds_are_explained(expr: str, message: str) -> None:
    text = HEAD + RECONNECT + f'[thresholds]\n"{expr}" = "== 0"\n'
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source=SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: thresholds.{expr}: ")
    assert message in str(info.value)
