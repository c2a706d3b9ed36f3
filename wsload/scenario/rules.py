"""``[[session.on]]`` → frozen reply rules (used only by the parser).

A rule answers a server message the moment it arrives, whatever the connection is doing
(a script step, the hold, the wait for the server's Close): Socket.IO's ping ``2`` → pong ``3``,
graphql-ws's ``{"type":"ping"}`` → ``{"type":"pong"}``. ``match`` takes any ``expect`` matcher.
"""

from __future__ import annotations

from typing import Any

from wsload.core.script import Rule
from wsload.core.templates import Template, TemplateError
from wsload.errors import ScenarioError
from wsload.scenario._table import Table, close_reason, sendable_code, show
from wsload.scenario.steps import Resolve, parse_matcher, parse_save

__all__ = ["RULE_KEYS", "parse_rules", "rules_to_list"]

RULE_KEYS = ("match", "send", "binary", "ping", "close", "save")
"""Every key of a ``[[session.on]]`` table (docs/scenarios.md)."""
_CLOSE_KEYS = ("code", "reason")


def parse_rules(t: Table, resolve: Resolve, columns: tuple[str, ...]) -> tuple[Rule, ...]:
    """The ``on`` list of the ``[session]`` table ``t`` (``()`` without one)."""
    raw = t.get("on")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise t.error("on", "expected one or more [[session.on]] tables")
    rules = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise t.error(f"on[{i}]", f"expected a table, got {show(item)}")
        rules.append(_rule(Table(t.source, t.key(f"on[{i}]"), item), resolve, columns))
    return tuple(rules)


def _rule(rt: Table, resolve: Resolve, columns: tuple[str, ...]) -> Rule:
    rt.allow(RULE_KEYS)
    if not rt.has("match"):
        raise rt.error("match", 'required: which messages, e.g. match = { equals = "2" }')
    matcher = parse_matcher(rt.table("match"), resolve)
    send = None
    if rt.has("send"):
        text = resolve(rt, "send", rt.string("send", ""))
        try:
            send = Template.compile(text, columns)
        except TemplateError as exc:
            raise rt.error("send", str(exc)) from None
    close = None
    if rt.has("close"):
        ct = rt.table("close")
        ct.allow(_CLOSE_KEYS)
        close = (sendable_code(ct, "code", 1000, ""), close_reason(ct, "reason"))
        ct.finish()
    rule = Rule(
        matcher=matcher,
        send=send,
        binary=rt.boolean("binary", False),
        ping=rt.boolean("ping", False),
        close=close,
        save=parse_save(rt.table("save")) if rt.has("save") else (),
    )
    if send is None and not rule.ping and close is None and not rule.save:
        raise ScenarioError(
            rt.source, rt.path, "a rule needs send, ping = true, close or save (what to do)"
        )
    rt.finish()
    return rule


def rules_to_list(rules: tuple[Rule, ...]) -> list[dict[str, Any]]:
    """The rules as ``[[session.on]]`` tables that :func:`parse_rules` reads back equal."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        m = rule.matcher
        item: dict[str, Any] = {"match": {m.kind: True if m.kind == "any" else m.value}}
        if rule.send is not None:
            item["send"] = rule.send.source
        if rule.binary:
            item["binary"] = True
        if rule.ping:
            item["ping"] = True
        if rule.close is not None:
            item["close"] = {"code": rule.close[0], "reason": rule.close[1]}
        if rule.save:
            item["save"] = {c.name: c.spec for c in rule.save}
        out.append(item)
    return out
