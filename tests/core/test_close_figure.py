"""One close figure per behaviour (docs/outcomes.md): every kind's expected ending yields its
headline close metric, so no shipped scenario shows an empty close column."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord, Side
from wsload.metrics.failures import EXPECTED_OUTCOMES
from wsload.metrics.samples import CLOSE_METRIC, metric_samples
from wsload.scenario.model import CLOSE_KINDS
from wsload.scenario.parse import load_scenario

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.toml"))

_OPEN = {"connect_start": 0.0, "connect_end": 0.001, "request_sent": 0.001, "upgraded": 0.002}
_ENDINGS: dict[str, dict[str, object]] = {  # the stamps each kind's expected ending leaves
    "clean": {"close_initiated": 1.0, "close_sent": 1.0, "close_received": 1.002, "eof": 1.003,
              "socket_closed": 1.003, "close_initiator": Side.CLIENT},
    "terminate": {"close_initiated": 1.0, "socket_closed": 1.0001},
    "close_no_wait": {"close_initiated": 1.0, "close_sent": 1.0, "socket_closed": 1.0001,
                      "close_initiator": Side.CLIENT},
    "await_server_close": {"close_initiated": 1.0, "close_received": 1.0, "close_sent": 1.0001,
                           "eof": 1.002, "socket_closed": 1.002, "close_initiator": Side.SERVER},
    "ignore_server_close": {"close_initiated": 1.0, "close_received": 1.0, "eof": 31.0,
                            "socket_closed": 31.0, "close_initiator": Side.SERVER},
    "invalid_close": {"close_initiated": 1.0, "close_sent": 1.0, "eof": 1.002,
                      "socket_closed": 1.002, "close_initiator": Side.CLIENT},
}  # fmt: skip


@pytest.mark.parametrize("kind", CLOSE_KINDS)
def test_the_expected_ending_of_every_kind_has_its_close_figure(kind: str) -> None:
    outcome: Outcome = EXPECTED_OUTCOMES[kind]
    record = ConnectionRecord(
        seq=1, label=kind, kind=kind, outcome=outcome, scheduled=0.0,
        **_OPEN, **_ENDINGS[kind],  # type: ignore[arg-type]
    )  # fmt: skip
    assert CLOSE_METRIC[kind] in dict(metric_samples(record))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_behaviour_has_a_close_figure(path: Path) -> None:
    for spec in load_scenario(path).close:
        assert CLOSE_METRIC.get(spec.kind), (path.name, spec.label)
