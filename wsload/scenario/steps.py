"""``[[session.steps]]`` → frozen script steps, and back (the resolved copy).

Each step is a table with exactly one action key (``send``, ``expect``, ``receive``, ``sleep``,
``ping``, ``repeat``) and the few keys that go with it; every mistake is a ``ScenarioError``
naming the step (``session.steps[2].expect.regex: invalid regex ...``). Templates are compiled
and ``{env:NAME}`` resolved here, once, so a running session never parses anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wsload.core.capture import Capture
from wsload.core.matching import Matcher
from wsload.core.script import Expect, Ping, Receive, Repeat, Send, Sleep, Step
from wsload.core.templates import Template, TemplateError, resolve_env
from wsload.errors import ScenarioError
from wsload.scenario._table import Table, either, show
from wsload.scenario.durations import format_duration
from wsload.scenario.model import STEP_PREFIX

__all__ = [
    "ACTIONS",
    "ECHO_KEYS",
    "STEP_KEYS",
    "Resolve",
    "env_resolver",
    "parse_matcher",
    "parse_save",
    "parse_steps",
    "session_steps",
    "steps_to_list",
]

ACTIONS = (
    "send",
    "send_hex",
    "send_base64",
    "send_file",
    "expect",
    "receive",
    "sleep",
    "ping",
    "repeat",
)
"""The action keys; a step has exactly one of them."""
STEP_KEYS: dict[str, tuple[str, ...]] = {
    "send": ("binary",),
    "send_hex": ("binary",),
    "send_base64": ("binary",),
    "send_file": ("binary",),
    "expect": ("name", "timeout", "save"),
    "receive": ("timeout",),
    "sleep": (),
    "ping": ("timeout",),
    "repeat": (),
}
"""Keys each action takes besides itself."""
_EXPECT_KEYS = ("json", "regex", "equals", "any")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_DEPTH = 8

Resolve = Callable[[Table, str, str], str]
"""``(table, key, text) -> text`` with ``{env:NAME}`` resolved (errors name the key)."""

ECHO_KEYS = ("messages", "message_size", "binary", "message_interval", "await_echo")
"""Session keys of echo mode only: a ``[[session.steps]]`` script replaces them."""


def env_resolver(environ: Mapping[str, str], secrets: list[str]) -> Resolve:
    """Resolves ``{env:NAME}`` in one value and appends the values it took to ``secrets``."""

    def resolve(t: Table, key: str, text: str) -> str:
        try:
            resolved, found = resolve_env(text, environ)
        except TemplateError as exc:
            raise t.error(key, str(exc)) from None
        secrets.extend(found)
        return resolved

    return resolve


def session_steps(
    t: Table,
    engine: str,
    timeout: float,
    base_dir: Path | None,
    resolve: Resolve,
    columns: tuple[str, ...] = (),
) -> tuple[Step, ...]:
    """The script of the ``[session]`` table ``t`` (``()``: echo mode).

    Echo-mode keys beside ``steps`` are errors, as is a script with the trio-websocket engine
    (it has no protocol object to drive).
    """
    if not t.has("steps"):
        return ()
    for key in ECHO_KEYS:
        if t.has(key):
            raise t.error(
                key, "echo mode only: not used with [[session.steps]] (send steps replace it)"
            )
    if engine == "trio-websocket":
        raise t.error("steps", 'not possible with engine = "trio-websocket"')
    return parse_steps(
        t, t.get("steps"), timeout=timeout, base_dir=base_dir, resolve=resolve, columns=columns
    )


def parse_steps(
    t: Table,
    raw: Any,
    *,
    timeout: float,
    base_dir: Path | None,
    resolve: Resolve,
    columns: tuple[str, ...] = (),
    depth: int = 0,
) -> tuple[Step, ...]:
    """The steps of ``raw`` (the ``steps`` list of table ``t``).

    Args:
        t: the table holding the list (``session`` or a ``repeat``), for messages.
        raw: the list as TOML gave it.
        timeout: the default ``timeout`` of expect/receive/ping steps (``message_timeout``).
        base_dir: where ``send_file`` paths are relative to (None: the working directory).
        resolve: resolves ``{env:NAME}`` in payload text.
        columns: the ``[data]`` file's columns (what ``{data:COLUMN}`` may name).
    """
    if not isinstance(raw, list) or not raw:
        raise t.error("steps", "expected one or more [[session.steps]] tables")
    if depth > _MAX_DEPTH:
        raise t.error("steps", f"repeat nested deeper than {_MAX_DEPTH} levels")
    steps = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise t.error(f"steps[{i}]", f"expected a table, got {show(item)}")
        st = Table(t.source, t.key(f"steps[{i}]"), item)
        steps.append(_step(st, timeout, base_dir, resolve, columns, depth))
    return tuple(steps)


def _step(
    st: Table,
    timeout: float,
    base_dir: Path | None,
    resolve: Resolve,
    columns: tuple[str, ...],
    depth: int,
) -> Step:
    actions = [key for key in st.data if key in ACTIONS]
    if len(actions) != 1:
        got = f"got {either(actions)}" if actions else "got none"
        raise ScenarioError(
            st.source, st.path, f"expected exactly one action key of {either(ACTIONS)}, {got}"
        )
    action = actions[0]
    allowed = (action, *STEP_KEYS[action])
    for key in st.data:
        if key not in allowed:
            owners = [a for a, keys in STEP_KEYS.items() if key in keys]
            why = f"only for {either(owners)} steps" if owners else "unknown key"
            raise st.error(key, f"{why} (a {action} step takes: {', '.join(allowed)})")
    step: Step
    if action.startswith("send"):
        step = _send(st, action, base_dir, resolve, columns)
    elif action == "expect":
        step = _expect(st, timeout, resolve)
    elif action == "receive":
        step = _receive(st, timeout)
    elif action == "sleep":
        delay = st.delay("sleep")
        step = Sleep(delay.min, delay.max)
    elif action == "ping":
        if st.get("ping") is not True:
            raise st.error("ping", f"expected true, got {show(st.data['ping'])}")
        step = Ping(st.duration("timeout", timeout, positive=True))
    else:
        step = _repeat(st, timeout, base_dir, resolve, columns, depth)
    st.finish()
    return step


def _send(
    st: Table, action: str, base_dir: Path | None, resolve: Resolve, columns: tuple[str, ...]
) -> Send:
    text = st.string(action, "")
    binary = st.boolean("binary", action in ("send_hex", "send_base64"))
    if action == "send":
        return Send(_template(st, action, resolve(st, action, text), columns), binary=binary)
    if action == "send_file":
        path = Path(text) if base_dir is None else base_dir / text
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise st.error(action, f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
        if not binary:
            try:
                content = data.decode("utf-8")
            except UnicodeDecodeError:
                raise st.error(action, "not UTF-8 text (set binary = true)") from None
            return Send(_template(st, action, resolve(st, action, content), columns))
        return Send(data=data, binary=True)
    try:
        if action == "send_hex":
            data = bytes.fromhex(resolve(st, action, text))
        else:
            data = base64.b64decode(resolve(st, action, text), validate=True)
    except (ValueError, binascii.Error) as exc:
        what = "hexadecimal" if action == "send_hex" else "base64"
        raise st.error(action, f"not valid {what}: {exc}") from None
    if not binary:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise st.error(action, "a text frame must be UTF-8 (set binary = true)") from None
    return Send(data=data, binary=binary)


def _template(st: Table, key: str, text: str, columns: tuple[str, ...]) -> Template:
    try:
        return Template.compile(text, columns)
    except TemplateError as exc:
        raise st.error(key, str(exc)) from None


def _expect(st: Table, timeout: float, resolve: Resolve) -> Expect:
    matcher = parse_matcher(st.table("expect"), resolve)
    name = st.string("name", "")
    if name and not _NAME_RE.match(name):
        raise st.error(
            "name",
            "must be 1-64 letters, digits, '_' or '-' (it names the metric step.<name>), "
            f"got {name!r}",
        )
    step_timeout = st.duration("timeout", timeout, positive=True)
    save = parse_save(st.table("save")) if st.has("save") else ()
    return Expect(matcher, step_timeout, name, STEP_PREFIX + name if name else "", save)


def parse_save(t: Table) -> tuple[Capture, ...]:
    """A ``save = { NAME = "json:path" | "regex:PATTERN" }`` table."""
    out = []
    for name in t.data:
        t.known.append(name)
        if not _VAR_RE.match(name):
            raise t.error(name, "a variable name is 1-64 letters, digits or '_' ({var:NAME})")
        spec = t.data[name]
        if not isinstance(spec, str):
            raise t.error(name, f'expected "json:dotted.path" or "regex:PATTERN", got {show(spec)}')
        try:
            out.append(Capture.build(name, spec))
        except ValueError as exc:
            raise t.error(name, str(exc)) from None
    if not out:
        raise ScenarioError(t.source, t.path, 'expected at least one NAME = "json:path" entry')
    return tuple(out)


def parse_matcher(et: Table, resolve: Resolve) -> Matcher:
    """An ``expect``-style matcher table (``{ json = ... }``, ``regex``, ``equals``, ``any``)."""
    given = [key for key in et.data if key in _EXPECT_KEYS]
    et.allow(_EXPECT_KEYS)
    if len(given) != 1:
        raise ScenarioError(
            et.source, et.path, f"expected exactly one of {either(_EXPECT_KEYS)}, got {len(given)}"
        )
    kind = given[0]
    matcher: Matcher
    if kind == "any":
        if et.get("any") is not True:
            raise et.error("any", f"expected true, got {show(et.data['any'])}")
        matcher = Matcher.build("any")
    elif kind == "json":
        value = et.get("json")
        if isinstance(value, str):
            try:
                value = json.loads(resolve(et, "json", value))
            except ValueError as exc:
                raise et.error("json", f"invalid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise et.error("json", f"expected a table of keys to match, got {show(value)}")
        matcher = Matcher.build("json", _plain(value))
    else:
        text = resolve(et, kind, et.string(kind, ""))
        try:
            matcher = Matcher.build(kind, text)  # type: ignore[arg-type]
        except ValueError as exc:
            raise et.error(kind, str(exc)) from None
    et.finish()
    return matcher


def _plain(value: Any) -> Any:
    """TOML data as JSON data (dates become their ISO text; JSON has no dates)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool):
        return value
    return value.isoformat()


def _receive(st: Table, timeout: float) -> Receive:
    value = st.data["receive"]
    if isinstance(value, dict):
        rt = st.table("receive")
        rt.allow(("duration",))
        if not rt.has("duration"):
            raise rt.error("duration", 'required: receive = { duration = "10s" } or receive = N')
        duration = rt.duration("duration", 0.0, positive=True)
        rt.finish()
        if st.has("timeout"):
            raise st.error("timeout", "only for receive = N (a duration is its own bound)")
        return Receive(None, duration, duration)
    count = st.integer("receive", 1, minimum=1)
    return Receive(count, None, st.duration("timeout", timeout, positive=True))


def _repeat(
    st: Table,
    timeout: float,
    base_dir: Path | None,
    resolve: Resolve,
    columns: tuple[str, ...],
    depth: int,
) -> Repeat:
    rt = st.table("repeat")
    rt.allow(("times", "duration", "steps"))
    if rt.has("times") == rt.has("duration"):
        raise ScenarioError(st.source, rt.path, "expected exactly one of 'times' or 'duration'")
    times = rt.opt_integer("times", 1)
    duration = rt.opt_duration("duration")
    steps = parse_steps(
        rt,
        rt.get("steps"),
        timeout=timeout,
        base_dir=base_dir,
        resolve=resolve,
        columns=columns,
        depth=depth + 1,
    )
    rt.finish()
    return Repeat(steps, times, duration)


def steps_to_list(steps: tuple[Step, ...], timeout: float) -> list[dict[str, Any]]:
    """The steps as ``[[session.steps]]`` tables that :func:`parse_steps` reads back equal.

    A binary payload is written as ``send_base64`` (a file's content too); durations as text.
    """
    out: list[dict[str, Any]] = []
    for step in steps:
        item: dict[str, Any]
        if isinstance(step, Send):
            if step.template is not None:
                item = {"send": step.template.source}
                if step.binary:
                    item["binary"] = True
            elif step.binary:
                item = {"send_base64": base64.b64encode(step.data).decode("ascii")}
            else:
                item = {"send_base64": base64.b64encode(step.data).decode("ascii"), "binary": False}
        elif isinstance(step, Expect):
            m = step.matcher
            item = {"expect": {m.kind: True if m.kind == "any" else m.value}}
            if step.name:
                item["name"] = step.name
            item["timeout"] = format_duration(step.timeout)
            if step.save:
                item["save"] = {c.name: c.spec for c in step.save}
        elif isinstance(step, Receive):
            if step.count is None:
                assert step.duration is not None
                item = {"receive": {"duration": format_duration(step.duration)}}
            else:
                item = {"receive": step.count, "timeout": format_duration(step.timeout)}
        elif isinstance(step, Sleep):
            sleep: Any = format_duration(step.min)
            if step.max > step.min:
                sleep = {"min": sleep, "max": format_duration(step.max)}
            item = {"sleep": sleep}
        elif isinstance(step, Ping):
            item = {"ping": True, "timeout": format_duration(step.timeout)}
        else:
            inner: dict[str, Any] = {}
            if step.times is not None:
                inner["times"] = step.times
            else:
                assert step.duration is not None
                inner["duration"] = format_duration(step.duration)
            inner["steps"] = steps_to_list(step.steps, timeout)
            item = {"repeat": inner}
        out.append(item)
    return out
