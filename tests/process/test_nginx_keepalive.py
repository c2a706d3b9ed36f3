"""Keepalive through a real reverse proxy: Debian's nginx in front of a ``websockets`` server,
``proxy_read_timeout 2s``. Connections waiting 10 s for the server's Close (a deploy's
``await_server_close``) survive it when ``ping_interval`` keeps pinging through the wait, and
are cut by nginx without it (the control run: the test would pass for nothing otherwise).

nginx is installed through tests/debian_packages.py when missing (skipped with the reason when
it cannot be), started on a loopback port with its own config, pid, log and temp directories
under the test's tmp_path, in the foreground, and always stopped and reaped.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from debian_packages import apt_install_skip_reason
from peers import WebsocketsPeer

from wsload.runner.modes.execute import execute_run
from wsload.runner.targets.managed import free_port
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_slow")

NGINX = "/usr/sbin/nginx"
CLIENTS = 20
_CONFIG = """
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 2s;
            proxy_send_timeout 2s;
        }}
    }}
}}
"""


def _listening(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[int]:
    """nginx on a loopback port in front of a ``websockets`` server; yields nginx's port."""
    reason = apt_install_skip_reason("nginx", NGINX, 300.0)
    if reason is not None:
        pytest.skip(reason)
    home = tmp_path / "nginx"
    home.mkdir()
    port = free_port()
    with WebsocketsPeer(close_timeout=5.0) as peer:
        config = home / "nginx.conf"
        config.write_text(_CONFIG.format(dir=home, port=port, upstream=peer.port), "utf-8")
        with (home / "stderr.log").open("wb") as stderr:
            nginx = subprocess.Popen(
                [NGINX, "-p", str(home), "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
            try:
                if not _listening(port, 10.0):
                    log = (home / "stderr.log").read_text("utf-8", "replace")[-500:]
                    pytest.skip(f"nginx did not start: {log}")
                yield port
            finally:
                nginx.terminate()
                try:
                    nginx.wait(10)
                except subprocess.TimeoutExpired:
                    nginx.kill()
                    nginx.wait(10)


def _run(tmp_path: Path, port: int, ping: str, name: str) -> dict[str, Any]:
    scenario = parse_scenario(
        f"""
seed = 2
[target]
url = "ws://127.0.0.1:{port}/close?after=10000&code=1001&reason=deploy"
[load]
rate = 100
connections = {CLIENTS}
drain = "20s"
[session]
ping_interval = "{ping}"
[[close]]
kind = "await_server_close"
timeout = "15s"
""",
        source=f"{name}.toml",
    )
    out = tmp_path / name
    execute_run(scenario, out=out, quiet=True)
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


def test_pings_keep_connections_alive_through_a_10s_wait_behind_nginx(
    tmp_path: Path, proxied: int
) -> None:
    kept = _run(tmp_path, proxied, "1s", "pinging")
    assert kept["outcomes"]["server_closed"] == CLIENTS  # the server's 1001 after 10 s
    assert kept["close_codes"]["received"] == {"1001": CLIENTS}
    assert kept["latency_us"]["ping_rtt"]["count"] >= 9 * CLIENTS  # one a second, 10 s
    assert kept["latency_us"]["server_close_wait"]["p50"] >= 9_000_000
    cut = _run(tmp_path, proxied, "0s", "silent")  # the control: nginx's 2 s idle timeout
    assert cut["outcomes"]["server_closed"] == 0
    assert cut["latency_us"]["ping_rtt"]["count"] == 0
