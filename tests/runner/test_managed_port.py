"""``port = 0`` of ``[target.process]``: the port the managed server is started (and
restarted) on comes from below the kernel's ephemeral range, where no outgoing connection (a
reconnecting client, the readiness probe connecting to itself) can take it in a restart's gap."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wsload.runner.targets.managed import free_port

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_the_port_is_below_the_ephemeral_range_and_free(tmp_path: Path) -> None:
    ranges = tmp_path / "range"
    ranges.write_text("32768\t60999\n", encoding="ascii")
    ports = {free_port("127.0.0.1", ranges) for _ in range(20)}
    assert all(10_000 <= port < 32_768 for port in ports), ports
    assert len(ports) > 1  # picked at random, not one fixed port two runs would share
    assert all(_bindable(port) for port in ports)


def test_the_machines_own_range_is_read() -> None:
    if not RANGE.is_file():
        pytest.skip("no ephemeral range to read (not Linux)")
    low = int(RANGE.read_text(encoding="ascii").split()[0])
    port = free_port()
    assert port < low or low < 11_000, (port, low)


def test_no_room_below_the_range_falls_back_to_the_kernels_pick(tmp_path: Path) -> None:
    narrow = tmp_path / "range"
    narrow.write_text("10500 60999\n", encoding="ascii")
    assert 10_500 <= free_port("127.0.0.1", narrow) <= 65_535
    assert _bindable(free_port("127.0.0.1", tmp_path / "missing"))
