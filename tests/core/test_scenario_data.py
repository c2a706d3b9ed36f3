"""``[data]``: the file read and checked, ``{data:COLUMN}`` filled per client, rows chosen by
``seq`` (unique across segments without coordination), secret columns redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsload.core.handshake import RequestTemplate
from wsload.core.templates import Template, TemplateError
from wsload.errors import ScenarioError
from wsload.plan.data import row_for
from wsload.plan.segment import Segment, owned_seqs
from wsload.report.redact import redact_scenario, redact_secrets
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.model import CloseSpec, DataConfig, Scenario
from wsload.scenario.parse import parse_scenario

LOAD = '[load]\nrate = 10\nduration = "1s"\n'


def _parse(tmp_path: Path, text: str, data: str = "user,token\nalice,t-a\nbob,t-b\n") -> Scenario:
    (tmp_path / "users.csv").write_text(data, encoding="utf-8")
    return parse_scenario(text + LOAD, source="s.toml", base_dir=tmp_path)


def _error(tmp_path: Path, text: str, data: str = "user,token\nalice,t-a\nbob,t-b\n") -> str:
    with pytest.raises(ScenarioError) as info:
        _parse(tmp_path, text, data)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        ('[data]\norder = "unique"\n', None, "s.toml: data.file: required"),
        ('[data]\nfile = "nope.csv"\n', None, "s.toml: data.file: no such file"),
        ('[data]\nfile = "users.csv"\norder = "shuffled"\n', None, "s.toml: data.order:"),
        ('[data]\nfile = "users.csv"\nfiel = 1\n', None, "did you mean 'file'"),
        ('[data]\nfile = "users.csv"\n', "user,token\na,b\nc\n", "data.file: line 3: 1 values"),
        ('[data]\nfile = "users.csv"\n', "", "data.file: empty"),
        ('[data]\nfile = "users.csv"\n', "user\n", "has no rows"),
        ('[data]\nfile = "users.csv"\n', "us er\nx\n", "column 'us er'"),
        ('[data]\nfile = "users.csv"\n', "a,a\nx,y\n", "appears twice"),
        (
            '[data]\nfile = "users.csv"\nsecret_columns = ["tok"]\n',
            None,
            "s.toml: data.secret_columns[0]: no column 'tok' (columns: user, token)",
        ),
        (
            '[target]\nurl = "ws://127.0.0.1:9/?u={data:user}"\n',
            None,
            "s.toml: target.url: {data:user}: needs a [data] file",
        ),
        (
            '[data]\nfile = "users.csv"\n[target]\nheaders = { X-User = "{data:usr}" }\n'
            'url = "ws://127.0.0.1:9/"\n',
            None,
            "s.toml: target.headers.X-User: {data:usr}: no such column in the [data] file "
            "(columns: user, token)",
        ),
        (
            '[data]\nfile = "users.csv"\n[target]\nurl = "ws://{data:user}.example:9/"\n',
            None,
            "s.toml: target.url: {data:COLUMN} may only fill the path and query",
        ),
        (
            '[data]\nfile = "users.csv"\n[target]\nurl = "ws://127.0.0.1:9/?u={data:user}"\n',
            "user\nal ice\n",
            "s.toml: target.url: {data:user}: row 1's value is not percent-encoded text",
        ),
        (
            '[data]\nfile = "users.csv"\n[[session.steps]]\nsend = "{data:nope}"\n',
            None,
            "s.toml: session.steps[0].send: {data:nope}: no such column",
        ),
        (
            '[data]\nfile = "users.csv"\n[target]\nurl = "ws://127.0.0.1:9/?u={data:user}"\n'
            'engine = "trio-websocket"\n',
            None,
            'target.url: a {data:COLUMN} is not possible with engine = "trio-websocket"',
        ),
    ],
)
def test_bad_data_names_file_and_key(
    tmp_path: Path, text: str, data: str | None, message: str
) -> None:
    got = _error(tmp_path, text) if data is None else _error(tmp_path, text, data)
    assert message in got
    assert "\n" not in got


def test_jsonl_rows_and_a_bad_line(tmp_path: Path) -> None:
    lines = [{"user": "a", "n": 1, "ok": True}, {"user": "b", "n": 2.5, "ok": False}]
    (tmp_path / "u.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    s = parse_scenario('[data]\nfile = "u.jsonl"\n' + LOAD, base_dir=tmp_path)
    assert s.data is not None
    assert s.data.columns == ("user", "n", "ok")
    assert s.data.rows == (("a", "1", "true"), ("b", "2.5", "false"))
    (tmp_path / "u.jsonl").write_text('{"user": "a"}\n{"name": "b"}\n')
    with pytest.raises(ScenarioError, match=r"data\.file: line 2: keys \['name'\] differ"):
        parse_scenario('[data]\nfile = "u.jsonl"\n' + LOAD, base_dir=tmp_path)


def test_secret_columns_become_secrets_and_the_resolved_copy_reads_back(tmp_path: Path) -> None:
    text = (
        '[data]\nfile = "users.csv"\norder = "unique"\nsecret_columns = ["token"]\n'
        '[target]\nurl = "ws://127.0.0.1:9/?u={data:user}"\n'
        'headers = { Authorization = "Bearer {data:token}" }\n'
        '[[session.steps]]\nsend = "login {data:user} {data:token}"\n'
    )
    s = _parse(tmp_path, text)
    assert "t-a" in s.secrets and "t-b" in s.secrets
    assert "alice" not in s.secrets
    assert redact_secrets("login bob t-b", s.secrets) == "login bob REDACTED"
    again = parse_scenario(scenario_to_toml(s), source="s.toml")
    assert again == s
    assert again.data is not None and again.data.rows == (("alice", "t-a"), ("bob", "t-b"))


def test_templates_fill_data_and_captured_values() -> None:
    t = Template.compile("{data:token}/{seq}/{var:sid}/{var:sid}", ("user", "token"))
    assert t.render(7, 1, ("alice", "t-a"), {"sid": "S1"}) == b"t-a/7/S1/S1"
    assert t.render(7, 1, ("alice", "t-a")) == b"t-a/7//"  # not captured yet: empty
    with pytest.raises(TemplateError, match="needs a \\[data\\] file"):
        Template.compile("{data:user}")
    with pytest.raises(TemplateError, match="expected \\{var:NAME\\}"):
        Template.compile("{var:1x}")


def test_request_template_fills_the_row() -> None:
    template = RequestTemplate.build(
        host="h",
        resource="/ws?u={data:user}&n={seq}",
        headers=(("Authorization", "Bearer {data:token}"),),
        columns=("user", "token"),
    )
    request = template.render(b"KEY", 4, ("alice", "t-a"))
    assert request.startswith(b"GET /ws?u=alice&n=4 HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer t-a\r\n" in request
    with pytest.raises(ValueError, match="names no column"):
        RequestTemplate.build(host="h", resource="/{data:x}", columns=("user",))


def test_rows_by_order() -> None:
    rows = tuple((str(i),) for i in range(5))
    seq = DataConfig("f", "sequential", columns=("n",), rows=rows)
    assert [row_for(seq, k, None) for k in range(1, 8)] == [rows[i % 5] for i in range(7)]
    unique = DataConfig("f", "unique", columns=("n",), rows=rows)
    assert [row_for(unique, k, None) for k in range(1, 7)] == [*rows, None]
    rnd = DataConfig("f", "random", columns=("n",), rows=rows)
    draws = [row_for(rnd, k, 1) for k in range(1, 200)]
    assert draws == [row_for(rnd, k, 1) for k in range(1, 200)]  # seeded: repeatable
    assert set(draws) == set(rows)


def test_unique_rows_across_segments_without_coordination() -> None:
    rows = tuple((str(i),) for i in range(100))
    data = DataConfig("f", "unique", columns=("n",), rows=rows)
    mix = (
        CloseSpec(kind="clean", label="a", weight=2.0),  # type: ignore[arg-type]
        CloseSpec(kind="terminate", label="b", weight=1.0),  # type: ignore[arg-type]
    )
    owned = [owned_seqs(mix, 1, Segment(i, 3)) for i in range(3)]
    taken = [row_for(data, next(owned[i]) + 1, None) for i in range(3) for _ in range(40)]
    used = [row for row in taken if row is not None]
    assert len(used) == len(set(used)) == 100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[session.steps]]\nexpect = { any = true }\nsave = { sid = "xpath:a" }\n',
            's.toml: session.steps[0].save.sid: expected "json:dotted.path" or "regex:PATTERN"',
        ),
        (
            '[[session.steps]]\nexpect = { any = true }\nsave = { sid = "regex:(" }\n',
            "s.toml: session.steps[0].save.sid: invalid regex '('",
        ),
        (
            '[[session.steps]]\nexpect = { any = true }\nsave = { "1x" = "json:a" }\n',
            "s.toml: session.steps[0].save.1x: a variable name is 1-64 letters",
        ),
        (
            '[[session.steps]]\nexpect = { any = true }\nsave = { sid = "json:a..b" }\n',
            "s.toml: session.steps[0].save.sid: empty part in the JSON path",
        ),
        ('[[session.steps]]\nsend = "{var:}"\n', "s.toml: session.steps[0].send: {var:}: expected"),
        ('[[session.on]]\nsend = "3"\n', "s.toml: session.on[0].match: required"),
        (
            '[[session.on]]\nmatch = { equals = "2" }\n',
            "s.toml: session.on[0]: a rule needs send, ping = true, close or save",
        ),
        (
            '[[session.on]]\nmatch = { equals = "2" }\nsend = "3"\nsnd = 1\n',
            "s.toml: session.on[0].snd: unknown key (did you mean 'send'?)",
        ),
        (
            '[[session.on]]\nmatch = { equls = "2" }\nsend = "3"\n',
            "s.toml: session.on[0].match.equls: unknown key (did you mean 'equals'?)",
        ),
        (
            "[[session.on]]\nmatch = { any = true }\nclose = { code = 1005 }\n",
            "s.toml: session.on[0].close.code: 1005 may not be sent",
        ),
        (
            '[[session.on]]\nmatch = { any = true }\nsend = "{data:x}"\n',
            "s.toml: session.on[0].send: {data:x}: needs a [data] file",
        ),
        ("[session]\non = 5\n", "s.toml: session.on: expected one or more [[session.on]] tables"),
        (
            '[[close]]\nkind = "await_server_close"\nsend_payload = "{sequence}"\n',
            "s.toml: close[0].send_payload: unknown template {sequence}",
        ),
        (
            '[[close]]\nkind = "clean"\nsend_payload = "2"\n',
            "s.toml: close[0].send_payload: only for kind 'await_server_close'",
        ),
    ],
)
def test_bad_rules_captures_and_payloads_name_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    got = _error(tmp_path, text)
    assert got.startswith(message), got
    assert "\n" not in got


def test_rules_and_captures_read_back_from_the_resolved_copy(tmp_path: Path) -> None:
    text = (
        '[data]\nfile = "users.csv"\n'
        '[[session.on]]\nmatch = { json = { type = "ping" } }\nsend = \'{"type":"pong"}\'\n'
        'save = { last = "json:payload.n" }\n'
        '[[session.on]]\nmatch = { equals = "bye" }\nping = true\n'
        'close = { code = 4000, reason = "ok" }\n'
        '[[session.steps]]\nexpect = { regex = "^0" }\nsave = { sid = \'regex:"sid":"(\\w+)"\' }\n'
        '[[session.steps]]\nsend = "40{var:sid} {data:user}"\n'
        '[[close]]\nkind = "await_server_close"\nsend_interval = "1s"\n'
        'send_payload = "2{var:sid}"\n'
    )
    s = _parse(tmp_path, text)
    assert len(s.session.on) == 2 and s.session.on[1].close == (4000, "ok")
    assert parse_scenario(scenario_to_toml(s), source="s.toml") == s


def test_a_rules_reply_is_redacted_like_a_payload() -> None:
    text = '[[session.on]]\nmatch = { equals = "2" }\nsend = "3 {env:TOKEN}"\n' + LOAD
    s = parse_scenario(text, environ={"TOKEN": "s3cr3t-value"})
    assert s.session.on[0].send is not None and "s3cr3t-value" in s.session.on[0].send.source
    shown = redact_scenario(s)
    assert shown.session.on[0].send is not None
    assert shown.session.on[0].send.source == "3 REDACTED"
    assert "s3cr3t-value" not in scenario_to_toml(shown)
