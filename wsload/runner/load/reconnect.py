"""``[reconnect]``: a logical client (one ``seq``) that connects again after losing its connection.

The loop sits *around* the driver: each attempt is an ordinary connection with its own record
(``attempt`` = 1, 2, ...), so outcome counts keep summing to the connections attempted, and the
driver knows nothing about reconnecting. Between attempts the client waits the backoff; the
schedule is the pure ``backoff_delay`` (exponential, capped, jittered like the AWS
Architecture Blog's "Exponential Backoff And Jitter"), drawn from a per-client generator seeded
from the run's seed and the ``seq``, so a seeded run repeats its reconnect schedule exactly.

A client stops when its connection ends any other way (its planned close), after
``max_attempts`` connections (it gives up), or when the run stops (graceful stop).
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

import trio

from wsload.core.kinds import CloseKind
from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.scenario.model import Backoff, ReconnectConfig

__all__ = ["backoff_delay", "client_rng", "retry_delay", "run_client"]

_WAITING = (CloseKind.AWAIT_SERVER_CLOSE, CloseKind.IGNORE_SERVER_CLOSE)
"""Kinds whose ``timeout`` bounds the wait for the server's Close (``[reconnect] hold``)."""

Connect = Callable[[ConnectionPlan, DriverContext], Awaitable[ConnectionRecord]]


def backoff_delay(backoff: Backoff, retry: int, rng: random.Random) -> float:
    """The wait before reconnect number ``retry`` (1: the first reconnect), in seconds.

    ``min(max, initial * multiplier ** (retry - 1))``, then jittered: ``full`` draws from
    [0, it], ``equal`` from [it/2, it], ``none`` is it. Computed without overflow for any
    ``retry`` (the exponent is compared in log space first).
    """
    if retry < 1:
        raise ValueError(f"retry counts from 1, got {retry}")
    ceiling = min(backoff.initial, backoff.max)
    if backoff.multiplier > 1 and retry > 1:
        if (retry - 1) * math.log(backoff.multiplier) >= math.log(backoff.max / ceiling):
            ceiling = backoff.max
        else:
            ceiling = min(backoff.max, ceiling * backoff.multiplier ** (retry - 1))
    if backoff.jitter == "full":
        return rng.uniform(0.0, ceiling)
    if backoff.jitter == "equal":
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)
    return ceiling


def client_rng(seed: int | None, seq: int) -> random.Random:
    """The jitter generator of logical client ``seq``: the same seed, the same schedule."""
    return random.Random(f"wsload-reconnect:{seed}:{seq}")


def retry_delay(backoff: Backoff, retry: int, seed: int | None, seq: int) -> float:
    """``backoff_delay(backoff, retry, rng)`` where ``rng`` is client ``seq``'s generator after
    the draws of retries 1 .. ``retry`` - 1: the same schedule as one generator kept for the
    client's whole life, without keeping it.

    A Mersenne Twister is ≈ 2.9 KB: kept by every logical client from its first connection,
    it was a quarter of what each of a deploy's 100,000 held clients cost, and all of them wait
    their backoff at once after the sweep. Made again for each wait instead (≈ 9 µs, and a
    replay of at most ``max_attempts`` draws).
    """
    rng = client_rng(seed, seq)
    for earlier in range(1, retry):
        backoff_delay(backoff, earlier, rng)
    return backoff_delay(backoff, retry, rng)


async def run_client(
    plan: ConnectionPlan,
    ctx: DriverContext,
    connect: Connect,
    record: Callable[[ConnectionRecord], None],
    interrupted: Callable[[ConnectionPlan], ConnectionRecord],
    failed: Callable[[ConnectionPlan, Exception], ConnectionRecord],
    config: ReconnectConfig | None,
    seed: int | None,
) -> None:
    """Run logical client ``plan.seq``: connect, and again after each outcome in ``config.on``
    (``config`` None: no ``[reconnect]``, one connection).

    Every attempt's record goes to ``record`` as soon as it ends (``interrupted(plan)`` makes
    the record of an attempt cancelled mid-way, ``failed(plan, exc)`` that of an attempt an
    error inside wsload ended); a cancellation during the backoff records
    nothing more, since no connection was attempted then. Attempt k > 1 is a copy of ``plan``
    with ``attempt = k``, scheduled at the end of its wait: its ``session`` latency counts from
    there.
    """
    stop = ctx.stop if ctx.stop is not None else trio.Event()
    while True:
        result: ConnectionRecord | None = None
        try:
            result = await connect(plan, ctx)
        except Exception as exc:  # a bug of wsload's own: recorded, the client goes on
            result = failed(plan, exc)
        finally:
            if result is None:
                result = interrupted(plan)
            record(result)
        if config is None or stop.is_set():
            return
        if result.outcome not in config.on or plan.attempt >= config.max_attempts:
            return
        result = None  # the aggregator has it: not kept through the backoff (100,000 waiting)
        with trio.move_on_after(retry_delay(config.backoff, plan.attempt, seed, plan.seq)):
            await stop.wait()
        if stop.is_set():
            return
        plan = replace(plan, scheduled=trio.current_time(), attempt=plan.attempt + 1)
        if config.hold is not None and plan.close.kind in _WAITING and plan.attempt == 2:
            # a reconnected client lives its own time, not the wait for the deploy's Close
            plan = replace(plan, close=replace(plan.close, timeout=config.hold))
