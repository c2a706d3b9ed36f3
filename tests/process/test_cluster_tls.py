"""``--cluster tls://``: a real Dask ``LocalCluster`` whose scheduler, workers and client all
hold certificates of one CA made by ``trustme``; a run over it works, and a client that trusts
another CA is refused with a clear error before Dask tries to connect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wsload.errors import ToolError, UsageError
from wsload.runner.executors.cluster import ClusterTLS
from wsload.runner.modes.execute import execute_run
from wsload.runner.options import RunOptions
from wsload.scenario.parse import parse_scenario

distributed = pytest.importorskip("distributed")
trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.usefixtures("bounded_slow")

SCENARIO = parse_scenario(
    'name = "tls"\nseed = 8\n[target]\nurl = "builtin"\n[load]\nmodel = "storm"\n'
    'concurrency = 20\n[[close]]\nkind = "clean"\n'
)


def _pem(tmp: Path, name: str, blob: Any) -> Path:
    path = tmp / name
    blob.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One CA; a certificate (key in the same file) for the cluster and one for the client;
    and another CA the scheduler's certificate does not chain to."""
    tmp = tmp_path_factory.mktemp("pki")
    ca, stranger = trustme.CA(), trustme.CA()
    return {
        "ca": _pem(tmp, "ca.pem", ca.cert_pem),
        "cluster": _pem(
            tmp, "cluster.pem", ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem
        ),
        "client": _pem(tmp, "client.pem", ca.issue_cert("client").private_key_and_cert_chain_pem),
        "stranger": _pem(tmp, "stranger.pem", stranger.cert_pem),
    }


@pytest.fixture(scope="module")
def cluster(pki: dict[str, Path]) -> Iterator[Any]:
    ca, cert = str(pki["ca"]), str(pki["cluster"])
    security = distributed.Security(
        tls_ca_file=ca,
        tls_scheduler_cert=cert,
        tls_worker_cert=cert,
        tls_client_cert=cert,
        require_encryption=True,
    )
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        protocol="tls://",
        security=security,
        dashboard_address=None,
    ) as local:
        yield local


def test_a_run_over_a_tls_cluster(tmp_path: Path, pki: dict[str, Path], cluster: Any) -> None:
    address = cluster.scheduler_address
    assert address.startswith("tls://")
    options = RunOptions(cluster=address, cluster_tls=ClusterTLS(pki["ca"], pki["client"]))
    assert execute_run(SCENARIO, options, out=tmp_path / "run", quiet=True) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["generator"]["processes"] == 2
    assert summary["outcomes"]["clean"] == 20


def test_a_scheduler_that_does_not_verify_is_refused(
    tmp_path: Path, pki: dict[str, Path], cluster: Any
) -> None:
    address = cluster.scheduler_address
    options = RunOptions(cluster=address, cluster_tls=ClusterTLS(pki["stranger"], pki["client"]))
    with pytest.raises(ToolError, match="the scheduler's certificate does not verify against"):
        execute_run(SCENARIO, options, out=tmp_path / "refused", quiet=True)


def test_tls_files_need_a_tls_address(tmp_path: Path, pki: dict[str, Path]) -> None:
    tls = ClusterTLS(pki["ca"], pki["client"])
    with pytest.raises(UsageError, match="need --cluster tls://"):
        RunOptions(cluster="tcp://127.0.0.1:8786", cluster_tls=tls).check(SCENARIO)
    with pytest.raises(UsageError, match="need --cluster tls://"):
        RunOptions(cluster_tls=tls).check(SCENARIO)
    with pytest.raises(UsageError, match="no such file"):
        missing = ClusterTLS(tmp_path / "nothing.pem")
        RunOptions(cluster="tls://127.0.0.1:8786", cluster_tls=missing).check(SCENARIO)
    with pytest.raises(UsageError, match="expected tcp://host:port or tls://host:port"):
        RunOptions(cluster="udp://127.0.0.1:8786").check(SCENARIO)
