"""``[[session.steps]]``, templates, matchers and ``{env:NAME}``: parsed once, exactly, safely.

Every mistake is a ``ScenarioError`` naming the key path (exit 2 from the CLI); templates and
matchers never crash on any input (hypothesis); the resolved copy parses back equal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from wsload.cli import app
from wsload.core.matching import Matcher, json_contains
from wsload.core.script import Expect, Ping, Receive, Repeat, Send, Sleep
from wsload.core.templates import Template, TemplateError, resolve_env
from wsload.errors import ScenarioError
from wsload.report.redact import REDACTED, redact_scenario
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

HEAD = '[load]\nrate = 10\nconnections = 1\n[session]\nmessage_timeout = "3s"\n'


def _steps(body: str, environ: dict[str, str] | None = None, base_dir: Path | None = None):  # type: ignore[no-untyped-def]
    return parse_scenario(HEAD + body, environ=environ or {}, base_dir=base_dir)


def test_every_action_parses_to_its_step(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi {seq}", encoding="utf-8")
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff")
    s = _steps(
        """
[[session.steps]]
send = 'sub {seq}'
[[session.steps]]
send_hex = "00ff"
[[session.steps]]
send_base64 = "aGk="
binary = false
[[session.steps]]
send_file = "hello.txt"
[[session.steps]]
send_file = "blob.bin"
binary = true
[[session.steps]]
expect = { json = { op = "ok", nested = { a = [1, 2] } } }
name = "ok"
timeout = "2s"
[[session.steps]]
expect = { regex = "^a+$" }
[[session.steps]]
receive = 3
[[session.steps]]
receive = { duration = "1s" }
[[session.steps]]
sleep = { min = "1s", max = "2s" }
[[session.steps]]
ping = true
[[session.steps]]
repeat = { duration = "5s", steps = [{ sleep = "1s" }] }
""",
        base_dir=tmp_path,
    ).session.steps
    assert s[0] == Send(Template.compile("sub {seq}"))
    assert s[1] == Send(data=b"\x00\xff", binary=True)
    assert s[2] == Send(data=b"hi")
    assert s[3] == Send(Template.compile("hi {seq}"))
    assert s[4] == Send(data=b"\x00\xff", binary=True)
    expected_json = Matcher.build("json", {"op": "ok", "nested": {"a": [1, 2]}})
    assert s[5] == Expect(expected_json, 2.0, "ok", "step.ok")
    assert s[6] == Expect(Matcher.build("regex", "^a+$"), 3.0)  # message_timeout
    assert s[7:] == (
        Receive(3, None, 3.0),
        Receive(None, 1.0, 1.0),
        Sleep(1.0, 2.0),
        Ping(3.0),
        Repeat((Sleep(1.0, 1.0),), duration=5.0),
    )


def test_resolved_copy_parses_back_equal(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01")
    scenario = _steps(
        """
[[session.steps]]
send = '{"op":"subscribe","at":{now_ms},"id":"{uuid}","r":"{random:4}","n":{step}}'
[[session.steps]]
send_file = "blob.bin"
binary = true
[[session.steps]]
expect = { any = true }
[[session.steps]]
expect = { equals = "x\\ny" }
name = "eq"
[[session.steps]]
repeat = { times = 2, steps = [
  { send = "a" }, { repeat = { times = 2, steps = [{ ping = true }] } },
] }
[thresholds]
"step.eq.p99" = "< 5ms"
"behaviours.clean.step.eq.count" = "> 99%"
""",
        base_dir=tmp_path,
    )
    assert parse_scenario(scenario_to_toml(scenario)) == scenario


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ("[[session.steps]]\nsend = 'x'\nsleep = '1s'", "session.steps[0]", "exactly one action"),
        ("[[session.steps]]\nname = 'x'", "session.steps[0]", "got none"),
        ("[[session.steps]]\nsend = 'x'\nname = 'n'", "session.steps[0].name", "only for 'expect'"),
        ("[[session.steps]]\nsend = '{sequence}'", "session.steps[0].send", "unknown template"),
        ("[[session.steps]]\nsend = '{random:0}'", "session.steps[0].send", "{random:N}"),
        ("[[session.steps]]\nsend_hex = 'zz'", "session.steps[0].send_hex", "not valid hex"),
        (
            "[[session.steps]]\nsend_base64 = '!!'",
            "session.steps[0].send_base64",
            "not valid base64",
        ),
        (
            "[[session.steps]]\nsend_hex = 'ff'\nbinary = false",
            "session.steps[0].send_hex",
            "UTF-8",
        ),
        ("[[session.steps]]\nsend_file = 'nope.txt'", "session.steps[0].send_file", "cannot read"),
        (
            "[[session.steps]]\nexpect = { regex = '(' }",
            "session.steps[0].expect.regex",
            "invalid regex",
        ),
        (
            "[[session.steps]]\nexpect = { json = '{nope' }",
            "session.steps[0].expect.json",
            "invalid JSON",
        ),
        ("[[session.steps]]\nexpect = { json = '[1]' }", "session.steps[0].expect.json", "a table"),
        (
            "[[session.steps]]\nexpect = { any = true, regex = 'a' }",
            "session.steps[0].expect",
            "exactly one",
        ),
        (
            "[[session.steps]]\nexpect = { any = false }",
            "session.steps[0].expect.any",
            "expected true",
        ),
        (
            "[[session.steps]]\nexpect = { anything = 1 }",
            "session.steps[0].expect.anything",
            "unknown key",
        ),
        (
            "[[session.steps]]\nexpect = { any = true }\nname = 'a.b'",
            "session.steps[0].name",
            "letters",
        ),
        ("[[session.steps]]\nreceive = 0", "session.steps[0].receive", ">= 1"),
        (
            "[[session.steps]]\nreceive = { duration = '1s' }\ntimeout = '1s'",
            "session.steps[0].timeout",
            "only for receive = N",
        ),
        ("[[session.steps]]\nsleep = 'soon'", "session.steps[0].sleep", "duration"),
        ("[[session.steps]]\nping = 1", "session.steps[0].ping", "expected true"),
        (
            "[[session.steps]]\nrepeat = { steps = [{ ping = true }] }",
            "session.steps[0].repeat",
            "'times' or 'duration'",
        ),
        (
            "[[session.steps]]\nrepeat = { times = 2, steps = [] }",
            "session.steps[0].repeat.steps",
            "one or more",
        ),
        (
            "[[session.steps]]\nrepeat = { times = 1, steps = [{ sned = 'x' }] }",
            "session.steps[0].repeat.steps[0]",
            "exactly one action",
        ),
        ("steps = 3", "session.steps", "one or more"),
        ("messages = 3\n[[session.steps]]\nping = true", "session.messages", "echo mode only"),
        ('[[session.steps]]\nsend = "{env:NOPE}"', "session.steps[0].send", "NOPE is not set"),
    ],
)
def test_step_mistakes_name_the_key(body: str, key: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        _steps(body.replace("[[session.steps]]", "[[session.steps]]", 1))
    assert info.value.key == key, info.value
    assert message in info.value.message, info.value


def test_thresholds_know_the_step_metrics() -> None:
    with pytest.raises(ScenarioError, match=r"unknown metric 'step\.nope'"):
        _steps("[[session.steps]]\nping = true\n[thresholds]\n'step.nope.p99' = '< 1s'\n")


def test_invalid_regex_is_exit_2_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEAD + "[[session.steps]]\nexpect = { regex = '[a-' }\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}: session.steps[0].expect.regex: invalid regex" in result.stderr
    assert "Traceback" not in result.output


# --- {env:NAME} ----------------------------------------------------------------------------------

ENV_BODY = """
[target]
url = "ws://127.0.0.1:9/{env:WS_PATH}?n={seq}"
origin = "https://{env:WS_ORIGIN}"
headers = { Authorization = "Bearer {env:WS_TOKEN}", X-Plain = "p-{env:WS_PATH}" }
[load]
rate = 10
connections = 1
[[session.steps]]
send = '{"token":"{env:WS_TOKEN}","n":{seq}}'
[[session.steps]]
expect = { equals = "{env:WS_TOKEN}" }
"""
ENV = {"WS_PATH": "path-9f3", "WS_ORIGIN": "origin-7c1", "WS_TOKEN": "tok-5e2"}


def test_env_values_are_resolved_once_at_load_time() -> None:
    s = parse_scenario(ENV_BODY, environ=ENV)
    assert s.target.url == "ws://127.0.0.1:9/path-9f3?n={seq}"
    assert s.target.origin == "https://origin-7c1"
    assert dict(s.target.headers) == {"Authorization": "Bearer tok-5e2", "X-Plain": "p-path-9f3"}
    send = s.session.steps[0]
    assert isinstance(send, Send) and send.template is not None
    assert send.template.render(3, 1) == b'{"token":"tok-5e2","n":3}'
    assert sorted(s.secrets) == sorted(ENV.values())


def test_an_empty_variable_expands_to_nothing_and_is_no_secret() -> None:
    s = parse_scenario(ENV_BODY, environ={**ENV, "WS_PATH": ""})
    assert s.target.url == "ws://127.0.0.1:9/?n={seq}"
    assert "" not in s.secrets


@pytest.mark.parametrize("name", sorted(ENV))
def test_an_unset_variable_names_the_key_and_the_variable_never_a_value(name: str) -> None:
    environ = {k: v for k, v in ENV.items() if k != name}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(ENV_BODY, environ=environ)
    assert name in info.value.message and "is not set" in info.value.message
    assert not any(value in str(info.value) for value in environ.values())


def test_nothing_but_env_is_expanded() -> None:
    text = "$HOME ${HOME} $(id) `id` %(HOME)s {HOME} {env:HOME"
    assert resolve_env(text, {"HOME": "/root"}) == (text, ())


def test_redacted_scenario_shows_no_env_value_anywhere() -> None:
    s = parse_scenario(ENV_BODY, environ=ENV)
    shown = scenario_to_toml(redact_scenario(s))
    assert not [v for v in ENV.values() if v in shown]
    assert REDACTED in shown and "{seq}" in shown
    assert parse_scenario(shown)  # still a loadable file


# --- hypothesis: templates and matchers never crash --------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_templates_compile_or_fail_cleanly_and_render_text(text: str) -> None:
    try:
        template = Template.compile(text)
    except TemplateError:
        return
    out = template.render(5, 2).decode("utf-8")
    if not re.search(r"\{[a-z_]+(:[^{}]*)?\}", text):
        assert out == text


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["seq", "step", "uuid", "now_ms", "random:7"]), st.text(max_size=10))
def test_every_hole_expands(hole: str, around: str) -> None:
    around = around.replace("{", "(").replace("}", ")")
    out = Template.compile(f"{around}{{{hole}}}{around}").render(42, 3).decode()
    assert out.startswith(around) and out.endswith(around)
    middle = out[len(around) : len(out) - len(around)]
    expected = {"seq": "42", "step": "3"}.get(hole)
    assert middle == expected if expected else "{" not in middle


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.binary(max_size=40) | st.text(max_size=40))
def test_matchers_never_raise(pattern: object, payload: bytes | str) -> None:
    for matcher in (
        Matcher.build("json", {"k": pattern}),
        Matcher.build("equals", "x"),
        Matcher.build("regex", "a|b"),
        Matcher.build("any"),
    ):
        assert matcher.matches(payload) in (True, False)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_json_pattern_matches_itself(value: object) -> None:
    assert json_contains({"k": value, "extra": 1}, {"k": value})
