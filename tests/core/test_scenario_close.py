"""The close mix: RFC 6455 close codes and reasons, per-kind keys, labels, engine limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsload.core.codes import is_sendable
from wsload.errors import ScenarioError
from wsload.scenario.close import CLOSE_KIND_KEYS
from wsload.scenario.model import CLOSE_KINDS, INVALID_VARIANTS, CloseSpec, Scenario
from wsload.scenario.parse import parse_scenario

SOURCE = "mix.toml"
HEAD = '[load]\nrate = 10\nduration = "1s"\n'


pytestmark = pytest.mark.usefixtures("bounded_sync")


def mix(*closes: str, head: str = HEAD) -> Scenario:
    """Parse a scenario whose [[close]] tables have the given bodies."""
    text = head + "".join(f"\n[[close]]\n{body}\n" for body in closes)
    return parse_scenario(text, source=SOURCE)


def error(*closes: str, head: str = HEAD) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        mix(*closes, head=head)
    assert str(info.value).startswith(f"{SOURCE}: {info.value.key}: ")
    return info.value


# --- close codes (RFC 6455 §7.4) ---------------------------------------------------------------

SENDABLE = [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999]
NOT_SENDABLE = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535, -1, 70000]


@pytest.mark.parametrize("code", SENDABLE)
@pytest.mark.parametrize("kind", ["clean", "close_no_wait", "await_server_close"])
def test_sendable_codes_are_accepted(kind: str, code: int) -> None:
    assert mix(f'kind = "{kind}"\ncode = {code}').close[0].code == code


@pytest.mark.parametrize("code", NOT_SENDABLE)
@pytest.mark.parametrize("kind", ["clean", "close_no_wait", "await_server_close"])
def test_reserved_and_out_of_range_codes_point_to_invalid_close(kind: str, code: int) -> None:
    exc = error(f'kind = "{kind}"\ncode = {code}')
    assert exc.key == "close[0].code"
    assert f"{code} may not be sent in a Close frame" in exc.message
    assert "1000-1003, 1007-1014 or 3000-4999" in exc.message
    assert 'kind = "invalid_close"' in exc.message


@pytest.mark.parametrize("key", ["close_code", "shutdown_code"])
@pytest.mark.parametrize("code", [1004, 1005, 1006, 1015, 999, 5000])
def test_server_codes_follow_the_same_rule(key: str, code: int) -> None:
    head = HEAD + f"[target.server]\n{key} = {code}\n"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(head, source=SOURCE)
    assert info.value.key == f"target.server.{key}"
    assert "may not be sent" in info.value.message


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-100, max_value=70000))
def test_the_parser_agrees_with_is_sendable(code: int) -> None:
    body = f'kind = "clean"\ncode = {code}'
    if is_sendable(code):
        assert mix(body).close[0].code == code
    else:
        assert error(body).key == "close[0].code"


@pytest.mark.parametrize("variant", INVALID_VARIANTS)
def test_reserved_codes_are_reachable_through_invalid_close(variant: str) -> None:
    spec = mix(f'kind = "invalid_close"\nvariant = "{variant}"').close[0]
    assert (spec.kind, spec.variant, spec.timeout) == ("invalid_close", variant, 10.0)


def test_invalid_close_names_its_variants() -> None:
    exc = error('kind = "invalid_close"\nvariant = "one-byte"')
    assert exc.key == "close[0].variant"
    assert "expected one of 'code_1005', 'code_1006'" in exc.message
    assert exc.message.endswith("got 'one-byte' (did you mean 'one_byte'?)")


# --- reasons: at most 123 UTF-8 bytes (125-byte control frame minus the 2-byte code) ------------


@pytest.mark.parametrize(
    ("reason", "ok"),
    [
        ("", True),
        ("x" * 123, True),
        ("x" * 124, False),
        ("é" * 61, True),  # 122 bytes
        ("é" * 62, False),  # 124 bytes, 62 characters
        ("😀" * 30, True),  # 120 bytes
        ("😀" * 31, False),  # 124 bytes, 31 characters
    ],
)
@pytest.mark.parametrize("kind", ["clean", "close_no_wait", "await_server_close"])
def test_reasons_are_limited_in_utf8_bytes(kind: str, reason: str, ok: bool) -> None:
    body = f'kind = "{kind}"\nreason = "{reason}"'
    if ok:
        assert mix(body).close[0].reason == reason
    else:
        exc = error(body)
        assert exc.key == "close[0].reason"
        size = len(reason.encode())
        assert exc.message == f"must be at most 123 UTF-8 bytes, got {size}"


def test_server_close_reason_has_the_same_limit() -> None:
    with pytest.raises(ScenarioError, match="close_reason: must be at most 123 UTF-8 bytes"):
        parse_scenario(HEAD + f'[target.server]\nclose_reason = "{"é" * 62}"\n')


# --- per-kind keys -------------------------------------------------------------------------------

_SAMPLE = {
    "code": "1001",
    "reason": '"bye"',
    "timeout": '"1s"',
    "rst": "true",
    "on_timeout": '"terminate"',
    "send_interval": '"100ms"',
    "send_payload": '"2"',
    "variant": '"one_byte"',
}


@pytest.mark.parametrize("kind", CLOSE_KINDS)
def test_each_kind_takes_its_keys(kind: str) -> None:
    body = f'kind = "{kind}"\n' + "\n".join(f"{k} = {_SAMPLE[k]}" for k in CLOSE_KIND_KEYS[kind])
    spec = mix(body).close[0]
    for key in CLOSE_KIND_KEYS[kind]:
        assert getattr(spec, key) != getattr(CloseSpec(kind="clean", label="x"), key), key


@pytest.mark.parametrize(
    ("kind", "key"),
    [(kind, key) for kind in CLOSE_KINDS for key in _SAMPLE if key not in CLOSE_KIND_KEYS[kind]],
)
def test_a_key_of_another_kind_says_which_kinds_take_it(kind: str, key: str) -> None:
    exc = error(f'kind = "{kind}"\n{key} = {_SAMPLE[key]}')
    owners = [k for k, keys in CLOSE_KIND_KEYS.items() if key in keys]
    assert exc.key == f"close[0].{key}"
    assert exc.message.startswith("only for kind " + ", ".join(repr(o) for o in owners))
    assert f"(kind {kind!r} takes: kind, name, weight" in exc.message


def test_rst_on_a_clean_close_names_terminate() -> None:
    exc = error('kind = "clean"\nrst = true')
    assert exc.message == (
        "only for kind 'terminate', 'await_server_close' "
        "(kind 'clean' takes: kind, name, weight, code, reason, timeout)"
    )


@pytest.mark.parametrize(
    ("body", "key", "hint"),
    [
        ('kind = "clean"\nweigth = 2', "weigth", "did you mean 'weight'?"),
        ('kind = "clean"\nreasn = "x"', "reasn", "did you mean 'reason'?"),
        ('kind = "clean"\ntimout = "1s"', "timout", "did you mean 'timeout'?"),
        ('kind = "terminate"\nrts = true', "rts", "did you mean 'rst'?"),
        ('kind = "clean"\nnam = "a"', "nam", "did you mean 'name'?"),
        ('kind = "invalid_close"\nvarient = "one_byte"', "varient", "did you mean 'variant'?"),
    ],
)
def test_close_typos_get_a_hint(body: str, key: str, hint: str) -> None:
    exc = error(body)
    assert exc.key == f"close[0].{key}"
    assert exc.message.startswith(f"unknown key ({hint})")


def test_kind_is_required_and_a_misspelt_kind_is_pointed_out() -> None:
    exc = error("weight = 1")
    assert exc.key == "close[0].kind"
    assert exc.message.startswith("required: one of 'clean', 'terminate', 'close_no_wait'")
    exc = error('knd = "clean"')
    assert exc.message.endswith("('knd' looks like a misspelt 'kind')")
    assert "did you mean 'clean'?" in error('kind = "clen"').message


@pytest.mark.parametrize(
    ("kind", "timeout"),
    [("clean", 10.0), ("await_server_close", 30.0), ("ignore_server_close", 60.0)],
)
def test_timeout_defaults_per_kind(kind: str, timeout: float) -> None:
    assert mix(f'kind = "{kind}"').close[0].timeout == timeout


def test_clean_timeout_zero_is_the_hard_close() -> None:
    assert mix('kind = "clean"\ntimeout = "0s"').close[0].timeout == 0.0


def test_await_server_close_keys() -> None:
    spec = mix(
        'kind = "await_server_close"\ntimeout = "5s"\non_timeout = "terminate"\nrst = true\n'
        'send_interval = "250ms"\ncode = 1001\nreason = "fallback"'
    ).close[0]
    assert (spec.timeout, spec.on_timeout, spec.rst, spec.send_interval) == (
        5,
        "terminate",
        1,
        0.25,
    )
    assert (spec.code, spec.reason) == (1001, "fallback")
    exc = error('kind = "await_server_close"\non_timeout = "wait"')
    assert exc.message == "expected one of 'clean', 'terminate', got 'wait'"


# --- labels and weights --------------------------------------------------------------------------


def test_label_is_the_name_else_the_kind() -> None:
    closes = mix(
        'kind = "clean"\nname = "soft"',
        'kind = "clean"\nname = "hard"\ntimeout = 0',
        'kind = "terminate"',
    ).close
    assert [c.label for c in closes] == ["soft", "hard", "terminate"]


def test_labels_must_be_distinct() -> None:
    exc = error('kind = "clean"', 'kind = "clean"\ntimeout = "1s"')
    assert exc.key == "close[1]"
    assert exc.message == "label 'clean' is also used by close[0]; give each a distinct name"
    exc = error('kind = "terminate"\nname = "clean"', 'kind = "clean"')
    assert "label 'clean' is also used by close[0]" in exc.message


@pytest.mark.parametrize("name", ["", "a.b", "a b", "-x", "x" * 65, "é"])
def test_labels_are_plain_words(name: str) -> None:
    exc = error(f'kind = "clean"\nname = "{name}"')
    assert exc.key == "close[0].name"
    assert "must be 1-64 letters, digits, '_' or '-'" in exc.message


@pytest.mark.parametrize(
    ("weight", "ok"), [("1", True), ("0.5", True), ("0", False), ("-1", False)]
)
def test_weights_are_positive(weight: str, ok: bool) -> None:
    if ok:
        assert mix(f'kind = "clean"\nweight = {weight}').close[0].weight == float(weight)
    else:
        assert error(f'kind = "clean"\nweight = {weight}').message == f"must be > 0, got {weight}"


@pytest.mark.parametrize(
    ("text", "fragment", "key"),
    [
        ("close = 5\n", "expected one or more [[close]] tables", "close"),
        ("close = []\n", "expected one or more [[close]] tables", "close"),
        ("close = [1]\n", "expected a table, got 1", "close[0]"),
        ("[close]\nkind = 'clean'\n", "expected one or more [[close]] tables", "close"),
    ],
)
def test_close_must_be_an_array_of_tables(text: str, fragment: str, key: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text + HEAD, source=SOURCE)
    assert (info.value.key, fragment in info.value.message) == (key, True)


# --- engine = "trio-websocket": the reference engine does clean and terminate only ---------------

_REF = HEAD + '[target]\nengine = "trio-websocket"\n'


@pytest.mark.parametrize("kind", CLOSE_KINDS)
def test_trio_websocket_engine_limits(kind: str) -> None:
    if kind in ("clean", "terminate"):
        assert mix(f'kind = "{kind}"', head=_REF).close[0].kind == kind
        return
    exc = error(f'kind = "{kind}"', head=_REF)
    assert exc.key == "close[0].kind"
    assert exc.message == (
        f'{kind!r} is not possible with engine = "trio-websocket" (only clean, terminate)'
    )


def test_trio_websocket_default_mix_is_clean() -> None:
    scenario = parse_scenario(_REF)
    assert scenario.target.engine == "trio-websocket"
    assert scenario.close == (CloseSpec(kind="clean", label="clean"),)
