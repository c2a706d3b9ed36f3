"""A Dask ``LocalCluster`` on loopback for the cluster tests.

Two worker processes of one thread each (one segment each), warmed: a cold worker's imports of
wsload take seconds, which would otherwise fall inside the first run's timing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["local_cluster"]


@contextmanager
def local_cluster() -> Iterator[Any]:
    """A ``distributed.LocalCluster`` of 2 warmed worker processes on 127.0.0.1 (skips the
    test when ``distributed`` is not installed)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        with distributed.Client(local) as client:
            client.run(importlib.import_module, "wsload.runner.executors.cluster")
        yield local
