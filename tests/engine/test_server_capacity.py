"""``close_capacity``: the built-in server answers at most N Closes per second, the rest queue.

The pure bucket (``ServerState.close_slot``) is checked exactly; on loopback, trio-websocket
clients closing together see their replies leave one ``1 / N`` apart.
"""

from __future__ import annotations

import pytest
import trio
from server_clients import running, trio_ws, until
from timing import SLACK

from wsload.scenario.model import Delay, ServerConfig
from wsload.server.policy import ServerState


def test_replies_leave_one_interval_apart_in_arrival_order() -> None:
    state = ServerState(ServerConfig(close_capacity=10.0))
    assert [state.close_slot(0.0) for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert state.close_slot(0.15) == pytest.approx(0.3)  # queued behind the third
    assert state.close_slot(5.0) == 5.0  # an idle bucket answers at once
    assert state.close_slot(5.05) == pytest.approx(5.1)


def test_without_a_capacity_replies_are_never_held() -> None:
    state = ServerState(ServerConfig())
    assert [state.close_slot(1.0) for _ in range(3)] == [1.0, 1.0, 1.0]


async def test_simultaneous_closes_are_answered_at_the_capacity() -> None:
    capacity, clients = 20.0, 8
    took: list[float] = []
    upgraded = 0
    with trio.fail_after(20):
        async with running(ServerConfig(close_capacity=capacity)) as target:

            async def one(ready: trio.Event) -> None:
                nonlocal upgraded
                async with trio_ws(target) as ws:
                    upgraded += 1
                    await ready.wait()
                    started = trio.current_time()
                    await ws.aclose(1000)
                    took.append(trio.current_time() - started)
                assert ws.closed is not None and ws.closed.code == 1000

            ready = trio.Event()
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(one, ready)
                await until(lambda: upgraded == clients)  # all Closes leave in one pass
                ready.set()
    took.sort()
    assert took[0] < SLACK
    # the k-th reply waits for k intervals of 1/capacity
    for k, seconds in enumerate(took):
        assert k / capacity - 0.01 <= seconds < k / capacity + SLACK, took


async def test_a_reply_delay_still_applies_under_a_capacity() -> None:
    config = ServerConfig(close_capacity=5.0, close_reply_delay=Delay(0.1, 0.1))
    with trio.fail_after(15):
        async with running(config) as target:
            for _ in range(2):  # 0.25 s apart, under 5/s: no queue, only the delay
                await trio.sleep(0.25)
                async with trio_ws(target) as ws:
                    started = trio.current_time()
                    await ws.aclose(1000)
                    took = trio.current_time() - started
                assert 0.1 <= took < 0.1 + SLACK
