"""The random-byte pool behind masks and handshake keys."""

from __future__ import annotations

import os

import pytest

from wsload.core import entropy
from wsload.core.entropy import random_bytes

pytestmark = pytest.mark.usefixtures("bounded_sync")


def test_sizes_and_no_repeats_across_refills() -> None:
    draws = [random_bytes(16) for _ in range(1000)]  # 16,000 bytes: about four refills
    assert all(len(d) == 16 for d in draws)
    assert len(set(draws)) == len(draws)
    assert len(random_bytes(4)) == 4
    assert len(random_bytes(4096)) == 4096


def test_a_forked_child_draws_different_bytes() -> None:
    random_bytes(4)  # the parent's pool is filled
    before = entropy._pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, random_bytes(16))
        os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 16)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert len(child) == 16
    assert child not in before  # the child refilled instead of reusing the parent's pool
