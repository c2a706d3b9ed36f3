"""The options of ``wsload run`` and ``wsload search`` that say where and how the load runs,
checked together in one place.

A wrong combination must exit 2 before anything is measured or written, and whether two
options go together often depends on the scenario (a search runs in one process; the segments
of a deploy must agree on its server's port and its events' instants): so the checks live with
the options, and ``RunOptions.check`` is the one gate ``execute_run`` passes them through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wsload.errors import UsageError
from wsload.plan.segment import WHOLE, Segment
from wsload.runner.executors.cluster import ClusterTLS, scheduler_address
from wsload.runner.executors.segment_run import MAX_START_WAIT
from wsload.runner.targets.deploy import check_deploy
from wsload.scenario.model import Scenario

if TYPE_CHECKING:
    from wsload.runner.endpoint import MetricsEndpoint

__all__ = ["RunOptions"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Where the load runs and what is recorded besides the results.

    Attributes:
        workers: generator processes on this machine, each running one segment (1: this
            process, no start-up cost).
        segment: run only this share of the scenario (``wsload.plan.segment``).
        start_at: wall-clock epoch seconds at which the schedule starts (segments run
            apart agree on it); None: now.
        own_server: this ``--segment`` starts ``[target.process]``, fires its events and
            restarts it; the other segments connect to its fixed port (``--own-server``).
        cluster: a Dask scheduler address: run the segments there (``executors/cluster.py``).
        cluster_tls: this client's CA, certificate and key for a ``tls://`` cluster.
        record_connections: also stream every connection's record to this JSON-lines file
            (one generator process only).
        metrics: serve live Prometheus metrics there until the results are written
            (``wsload.runner.endpoint``).
        repeat: whole runs of the scenario, merged into one result (``wsload.runner.modes.repeat``).
        plan_workers: ``--workers`` was not given: ``workers`` is decided from the plan and
            this machine's limits (``wsload.runner.modes.machine``) where the run may be split.
    """

    workers: int = 1
    segment: Segment = WHOLE
    start_at: float | None = None
    own_server: bool = False
    cluster: str | None = None
    cluster_tls: ClusterTLS = field(default_factory=ClusterTLS)
    record_connections: Path | None = None
    metrics: MetricsEndpoint | None = None
    repeat: int = 1
    plan_workers: bool = False

    @property
    def splittable(self) -> bool:
        """This run may use several generator processes on this machine."""
        return (
            self.segment.whole
            and self.cluster is None
            and self.start_at is None
            and self.record_connections is None
            and self.repeat == 1
        )

    @property
    def _shared(self) -> bool:
        """A share of the scenario, or a start time agreed with other shares."""
        return not self.segment.whole or self.start_at is not None

    def check(self, scenario: Scenario) -> None:
        """Refuse options that do not go together, with each other or with ``scenario``.

        Raises:
            UsageError: naming the options to drop or add (``check_deploy`` for what the
                segments of a deploy must agree on).
        """
        elsewhere = self._shared or self.cluster is not None
        if self.repeat != 1 and (
            elsewhere or self.record_connections is not None or self.metrics is not None
        ):
            raise UsageError(
                "--repeat runs whole runs here: drop --segment/--start-at/--cluster/"
                "--record-connections/--metrics-port"
            )
        check_deploy(
            scenario,
            segment=not self.segment.whole,
            start_at=self.start_at,
            own_server=self.own_server,
        )
        if scenario.load.model == "search":
            self._check_search()
        else:
            self._check_split()

    def _check_search(self) -> None:
        if self.workers != 1 or self.cluster is not None or self._shared:
            raise UsageError(
                "a search runs in one process: drop --workers/--cluster/--segment/--start-at"
            )
        if self.record_connections is not None:
            raise UsageError("--record-connections does not apply to a search (many runs)")

    def _check_split(self) -> None:
        if self.workers < 1:
            raise UsageError(f"--workers: must be >= 1, got {self.workers}")
        many = self.workers > 1 or self.cluster is not None
        if many and not self.segment.whole:
            raise UsageError("--segment runs one share in this process: drop --workers/--cluster")
        if self.record_connections is not None and many:
            raise UsageError(
                "--record-connections needs one generator process: drop --workers/--cluster"
            )
        if self.cluster is not None:
            scheduler_address(self.cluster)
            self.cluster_tls.check(self.cluster)
        elif self.cluster_tls.given:
            raise UsageError("--cluster-ca/--cluster-cert/--cluster-key need --cluster tls://...")
        if self.start_at is not None and self.start_at - time.time() > MAX_START_WAIT:
            raise UsageError(f"--start-at: {self.start_at:.0f} is more than 24 h ahead")
