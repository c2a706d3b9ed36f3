"""wss:// against real TLS servers with a throw-away CA (trustme): verify, reject, insecure, SNI."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trustme
from peers import WebsocketsPeer, start_trio_websocket

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext, make_ssl_context
from wsload.engine.driver import run_connection
from wsload.scenario.model import CloseSpec, SessionConfig, TargetConfig

CLEAN = CloseSpec(kind="clean", label="clean", timeout=5.0)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def other_ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tls") / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def websockets_tls(ca: trustme.CA) -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(ssl_context=server_context(ca, "127.0.0.1")) as peer:
        yield peer


async def run(url: str, target: TargetConfig, close: CloseSpec = CLEAN) -> ConnectionRecord:
    ctx = DriverContext.create(target, SessionConfig(), url)
    with trio.fail_after(15):
        return await run_connection(ConnectionPlan(1, trio.current_time(), close), ctx)


async def test_verified_against_the_ca(ca: trustme.CA, ca_file: str, nursery: trio.Nursery) -> None:
    port = await start_trio_websocket(nursery, ssl_context=server_context(ca, "127.0.0.1"))
    r = await run(f"wss://127.0.0.1:{port}/echo", TargetConfig(ca_file=ca_file))
    assert r.outcome is Outcome.CLEAN, r
    assert r.connect_start is not None and r.connect_end is not None
    assert r.connect_end > r.connect_start  # TLS counted in connect
    assert len(r.message_rtts) == 1


async def test_websockets_tls_peer_and_rst_terminate(
    websockets_tls: WebsocketsPeer, ca_file: str
) -> None:
    url = f"wss://127.0.0.1:{websockets_tls.port}/echo"
    r = await run(url, TargetConfig(ca_file=ca_file))
    assert r.outcome is Outcome.CLEAN, r
    terminate = CloseSpec(kind="terminate", label="terminate", rst=True)
    r = await run(url, TargetConfig(ca_file=ca_file), terminate)
    assert r.outcome is Outcome.TERMINATED, r


async def test_wrong_ca_is_tls_error(
    ca: trustme.CA, other_ca_file: str, nursery: trio.Nursery
) -> None:
    port = await start_trio_websocket(nursery, ssl_context=server_context(ca, "127.0.0.1"))
    r = await run(f"wss://127.0.0.1:{port}/echo", TargetConfig(ca_file=other_ca_file))
    assert r.outcome is Outcome.TLS_ERROR, r
    assert "CERTIFICATE_VERIFY_FAILED" in r.detail
    assert r.connect_end is None and r.request_sent is None


async def test_insecure_accepts_any_certificate(
    ca: trustme.CA, other_ca_file: str, nursery: trio.Nursery
) -> None:
    port = await start_trio_websocket(nursery, ssl_context=server_context(ca, "127.0.0.1"))
    target = TargetConfig(ca_file=other_ca_file, insecure=True)
    r = await run(f"wss://127.0.0.1:{port}/echo", target)
    assert r.outcome is Outcome.CLEAN, r


async def test_server_name_sets_sni_and_the_checked_name(
    ca: trustme.CA, ca_file: str, nursery: trio.Nursery
) -> None:
    port = await start_trio_websocket(nursery, ssl_context=server_context(ca, "wsload.test"))
    url = f"wss://127.0.0.1:{port}/echo"
    r = await run(url, TargetConfig(ca_file=ca_file, server_name="wsload.test"))
    assert r.outcome is Outcome.CLEAN, r
    r = await run(url, TargetConfig(ca_file=ca_file))
    assert r.outcome is Outcome.TLS_ERROR, r
    assert "127.0.0.1" in r.detail


async def test_plain_server_behind_wss_url_is_tls_error(nursery: trio.Nursery) -> None:
    port = await start_trio_websocket(nursery)
    r = await run(f"wss://127.0.0.1:{port}/echo", TargetConfig(insecure=True))
    assert r.outcome is Outcome.TLS_ERROR, r


def test_make_ssl_context_defaults_to_verification(ca_file: str) -> None:
    strict = make_ssl_context(TargetConfig(ca_file=ca_file))
    assert strict.verify_mode is ssl.CERT_REQUIRED and strict.check_hostname
    loose = make_ssl_context(TargetConfig(insecure=True))
    assert loose.verify_mode is ssl.CERT_NONE and not loose.check_hostname
    assert Path(ca_file).exists()


async def test_reference_engine_over_tls(
    ca: trustme.CA, ca_file: str, other_ca_file: str, nursery: trio.Nursery
) -> None:
    from wsload.engine.reference import run_connection_reference

    port = await start_trio_websocket(nursery, ssl_context=server_context(ca, "127.0.0.1"))
    url = f"wss://127.0.0.1:{port}/echo"
    for ca_path, outcome in ((ca_file, Outcome.CLEAN), (other_ca_file, Outcome.TLS_ERROR)):
        target = TargetConfig(ca_file=ca_path, engine="trio-websocket")
        ctx = DriverContext.create(target, SessionConfig(), url)
        with trio.fail_after(10):
            r = await run_connection_reference(ConnectionPlan(1, trio.current_time(), CLEAN), ctx)
        assert r.outcome is outcome, r
