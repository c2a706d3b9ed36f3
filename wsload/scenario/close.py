"""``[[close]]`` → frozen ``CloseSpec`` tuples (used only by the parser).

Each close behaviour takes its own keys (``CLOSE_KIND_KEYS``); a key of another kind is named as
such rather than reported as unknown.
"""

from __future__ import annotations

import re
from typing import Any

from wsload.core.kinds import KINDS, CloseKind
from wsload.core.templates import Template, TemplateError
from wsload.scenario._table import Table, close_reason, either, hint, sendable_code, show
from wsload.scenario.model import CLOSE_KINDS, INVALID_VARIANTS, CloseSpec, TargetConfig

__all__ = ["CLOSE_KEYS", "CLOSE_KIND_KEYS", "parse_closes"]

CLOSE_KEYS = (
    "kind", "name", "weight", "code", "reason", "timeout", "rst", "on_timeout",
    "send_interval", "send_payload", "variant",
)  # fmt: skip
"""Every key of a ``[[close]]`` table (merged into ``parse.TABLE_KEYS``; docs/scenarios.md)."""

CLOSE_KIND_KEYS: dict[str, tuple[str, ...]] = {
    kind.value: info.keys for kind, info in KINDS.items()
}
"""Keys each close kind accepts besides ``kind``, ``name`` and ``weight``."""
# Close labels appear in dotted threshold expressions and histogram-log tags: no '.' there.
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def parse_closes(
    root: Table, target: TargetConfig, columns: tuple[str, ...] = ()
) -> tuple[CloseSpec, ...]:
    """The ``[[close]]`` tables → one ``CloseSpec`` each (default: one clean close;
    ``columns``: the ``[data]`` file's, for ``send_payload``'s ``{data:COLUMN}``)."""
    raw = root.get("close")
    if raw is None:
        return (CloseSpec(kind=CloseKind.CLEAN, label="clean"),)
    if not isinstance(raw, list) or not raw:
        raise root.error("close", "expected one or more [[close]] tables")
    specs: list[CloseSpec] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise root.error(f"close[{i}]", f"expected a table, got {show(item)}")
        specs.append(_close(Table(root.source, f"close[{i}]", item), target, columns))
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.label in seen:
            raise root.error(
                f"close[{i}]",
                f"label {spec.label!r} is also used by close[{seen[spec.label]}]; "
                "give each a distinct name",
            )
        seen[spec.label] = i
    return tuple(specs)


def _close(t: Table, target: TargetConfig, columns: tuple[str, ...]) -> CloseSpec:
    if not t.has("kind"):
        typos = [k for k in t.data if k not in CLOSE_KEYS and hint(k, ["kind"])]
        typo = f" ({typos[0]!r} looks like a misspelt 'kind')" if typos else ""
        raise t.error("kind", f"required: one of {either(CLOSE_KINDS)}{typo}")
    kind = CloseKind(t.choice("kind", CLOSE_KINDS, "clean"))
    info = KINDS[kind]
    name = t.string("name", kind.value)
    if not _LABEL_RE.match(name):
        raise t.error(
            "name",
            "must be 1-64 letters, digits, '_' or '-' (it is the behaviour's label in results "
            f"and in thresholds like behaviours.<name>.close_total.p99), got {name!r}",
        )
    weight = t.number("weight", 1.0, positive=True)
    if target.engine == "trio-websocket" and not info.reference:
        supported = ", ".join(k.value for k, i in KINDS.items() if i.reference)
        raise t.error(
            "kind",
            f'{kind.value!r} is not possible with engine = "trio-websocket" (only {supported})',
        )
    allowed = info.keys
    for key in t.data:
        if key not in ("kind", "name", "weight") and key not in allowed:
            owners = [k for k, keys in CLOSE_KIND_KEYS.items() if key in keys]
            why = (
                f"only for kind {either(owners)}"
                if owners
                else f"unknown key{hint(key, CLOSE_KEYS)}"
            )
            takes = ", ".join(("kind", "name", "weight", *allowed))
            raise t.error(key, f"{why} (kind {kind.value!r} takes: {takes})")
    fields: dict[str, Any] = {}
    if "code" in allowed:
        fields["code"] = sendable_code(
            t, "code", 1000, '; reserved and out-of-range codes only via kind = "invalid_close"'
        )
        fields["reason"] = close_reason(t, "reason")
    if "timeout" in allowed:
        assert info.timeout is not None  # every kind with a timeout key has its default
        fields["timeout"] = t.duration("timeout", info.timeout)
    if "rst" in allowed:
        fields["rst"] = t.boolean("rst", False)
    if "on_timeout" in allowed:
        fields["on_timeout"] = t.choice("on_timeout", ("clean", "terminate"), "clean")
    if "send_interval" in allowed:
        fields["send_interval"] = t.duration("send_interval", 0.0)
    if "send_payload" in allowed and t.has("send_payload"):
        try:
            fields["send_payload"] = Template.compile(t.string("send_payload", ""), columns)
        except TemplateError as exc:
            raise t.error("send_payload", str(exc)) from None
    if "variant" in allowed:
        fields["variant"] = t.choice("variant", INVALID_VARIANTS, "code_1005")
    t.finish()
    return CloseSpec(kind=kind, label=name, weight=weight, **fields)
