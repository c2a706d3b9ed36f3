"""The one table of close kinds: every list of kinds elsewhere is derived from it, with the
TOML spellings and summary.json values unchanged."""

from __future__ import annotations

import pytest

from wsload.core.kinds import KINDS, CloseKind
from wsload.core.outcomes import Outcome
from wsload.engine.behaviours import BEHAVIOURS
from wsload.engine.reference import REFERENCE_KINDS
from wsload.metrics.failures import EXPECTED_OUTCOMES
from wsload.report.compare.tolerances import EXPECTED_OUTCOMES as COMPARED_EXPECTED
from wsload.report.summary import CLEAN_OUTCOMES
from wsload.scenario.close import CLOSE_KIND_KEYS
from wsload.scenario.model import CLOSE_KINDS, CloseSpec
from wsload.scenario.parse import TABLE_KEYS, parse_scenario


def test_every_kind_has_one_row_and_one_behaviour() -> None:
    assert list(KINDS) == list(CloseKind)
    assert set(BEHAVIOURS) == set(CloseKind)
    assert CLOSE_KINDS == (
        "clean",
        "terminate",
        "close_no_wait",
        "await_server_close",
        "ignore_server_close",
        "invalid_close",
    )


def test_derived_tables_keep_their_values() -> None:
    assert EXPECTED_OUTCOMES == {
        "clean": Outcome.CLEAN,
        "terminate": Outcome.TERMINATED,
        "close_no_wait": Outcome.CLOSE_NO_WAIT,
        "await_server_close": Outcome.SERVER_CLOSED,
        "ignore_server_close": Outcome.SERVER_DROPPED,
        "invalid_close": Outcome.INVALID_REJECTED,
    }
    assert frozenset(o.value for o in EXPECTED_OUTCOMES.values()) == COMPARED_EXPECTED
    assert CLEAN_OUTCOMES == {
        "clean": "clean",
        "await_server_close": "server_closed",
        "invalid_close": "invalid_rejected",
        "terminate": None,
        "close_no_wait": None,
        "ignore_server_close": None,
    }
    assert REFERENCE_KINDS == ("clean", "terminate")
    assert all(key in TABLE_KEYS["close"] for keys in CLOSE_KIND_KEYS.values() for key in keys)


@pytest.mark.parametrize("kind", list(CloseKind))
def test_the_parser_takes_each_kinds_keys_and_default_timeout(kind: CloseKind) -> None:
    text = (
        '[target]\nurl = "ws://127.0.0.1:9/"\n[load]\nrate = 1\nconnections = 1\n'
        f'[[close]]\nkind = "{kind}"\n'
    )
    scenario = parse_scenario(text)
    spec = scenario.close[0]
    assert spec.kind is kind and spec.label == kind.value
    info = KINDS[kind]
    if info.timeout is not None:
        assert "timeout" in info.keys and spec.timeout == info.timeout
    else:
        assert "timeout" not in info.keys


def test_a_spec_built_from_the_toml_spelling_gets_the_member() -> None:
    spec = CloseSpec("terminate", "t")  # type: ignore[arg-type]
    assert spec.kind is CloseKind.TERMINATE
