"""The reconnect schedule: ``backoff_delay`` exactly, and ``run_client``'s loop on the autojump
clock (each attempt recorded with its number, waits between them, stop and give-up rules).

The loop is driven by a scripted ``connect`` (it stands for the driver, which the loopback
tests in test_deploy_process.py run for real): here what matters is *when* each attempt starts.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
import trio
import trio.testing

from wsload.core.outcomes import Outcome
from wsload.core.record import ConnectionRecord
from wsload.engine.context import ConnectionPlan, DriverContext
from wsload.runner.load.reconnect import backoff_delay, client_rng, retry_delay, run_client
from wsload.scenario.model import Backoff, CloseSpec, ReconnectConfig, SessionConfig, TargetConfig

SPEC = CloseSpec(kind="await_server_close", label="hold")


def test_no_jitter_is_the_exponential_capped_at_max() -> None:
    backoff = Backoff(initial=0.1, max=1.0, multiplier=2.0, jitter="none")
    rng = random.Random(0)
    delays = [backoff_delay(backoff, n, rng) for n in range(1, 8)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0], abs=1e-12)


def test_a_huge_attempt_number_does_not_overflow() -> None:
    backoff = Backoff(initial=0.1, max=30.0, multiplier=100.0, jitter="none")
    assert backoff_delay(backoff, 10**6, random.Random(0)) == 30.0
    assert backoff_delay(Backoff(multiplier=1.0, jitter="none"), 50, random.Random(0)) == 0.1


def test_full_and_equal_jitter_on_a_seeded_generator() -> None:
    backoff = Backoff(initial=0.1, max=10.0, multiplier=2.0, jitter="full")
    rng = client_rng(7, 3)
    got = [backoff_delay(backoff, n, rng) for n in range(1, 6)]
    expected_rng = random.Random("wsload-reconnect:7:3")
    assert got == [expected_rng.uniform(0.0, 0.1 * 2 ** (n - 1)) for n in range(1, 6)]
    assert all(0.0 <= d <= 0.1 * 2 ** (n - 1) for n, d in enumerate(got, 1))
    equal = replace(backoff, jitter="equal")
    rng = client_rng(7, 3)
    expected_rng = random.Random("wsload-reconnect:7:3")
    for n in range(1, 6):
        ceiling = 0.1 * 2 ** (n - 1)
        value = backoff_delay(equal, n, rng)
        assert value == ceiling / 2 + expected_rng.uniform(0.0, ceiling / 2)
        assert ceiling / 2 <= value <= ceiling
    # the same seed and seq give the same schedule; another seq another one
    assert client_rng(7, 3).random() == client_rng(7, 3).random() != client_rng(7, 4).random()


def test_retry_counts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(Backoff(), 0, random.Random(0))


def _ctx() -> DriverContext:
    return DriverContext.create(
        TargetConfig(url="ws://127.0.0.1:9/"),
        SessionConfig(),
        "ws://127.0.0.1:9/",
        stop=trio.Event(),
    )


def _scripted(
    outcomes: list[Outcome], life: float, starts: list[float]
) -> Callable[[ConnectionPlan, DriverContext], Awaitable[ConnectionRecord]]:
    """A connect that lives ``life`` seconds and ends with the next outcome of ``outcomes``."""

    async def connect(plan: ConnectionPlan, ctx: DriverContext) -> ConnectionRecord:
        start = trio.current_time()
        starts.append(start)
        await trio.sleep(life)
        outcome = outcomes.pop(0)
        upgraded = start if outcome != Outcome.REFUSED else None
        return plan.record(outcome, upgraded=upgraded, socket_closed=trio.current_time())

    return connect


def _interrupted(plan: ConnectionPlan) -> ConnectionRecord:
    return plan.record(Outcome.INTERRUPTED, socket_closed=trio.current_time())


def _failed(plan: ConnectionPlan, exc: Exception) -> ConnectionRecord:
    return plan.record(Outcome.INTERNAL_ERROR, repr(exc), socket_closed=trio.current_time())


async def test_attempts_wait_the_backoff_exactly(autojump_clock: trio.testing.MockClock) -> None:
    config = ReconnectConfig(backoff=Backoff(initial=0.5, max=4.0, jitter="none"))
    outcomes = [Outcome.SERVER_CLOSED, Outcome.REFUSED, Outcome.ABNORMAL, Outcome.CLEAN]
    starts: list[float] = []
    records: list[ConnectionRecord] = []
    t0 = trio.current_time()
    plan = ConnectionPlan(seq=5, scheduled=t0, close=SPEC)
    connect = _scripted(outcomes, 1.0, starts)
    await run_client(plan, _ctx(), connect, records.append, _interrupted, _failed, config, seed=1)
    # life 1 s each, waits 0.5, 1, 2 s: attempt k starts at the previous end + its wait
    assert [s - t0 for s in starts] == [0.0, 1.5, 3.5, 6.5]
    assert [r.attempt for r in records] == [1, 2, 3, 4]
    assert [r.outcome for r in records][-1] == Outcome.CLEAN
    assert [r.scheduled - t0 for r in records] == [0.0, 1.5, 3.5, 6.5]
    assert {r.seq for r in records} == {5}


async def test_gives_up_after_max_attempts(autojump_clock: trio.testing.MockClock) -> None:
    config = ReconnectConfig(backoff=Backoff(initial=0.1, jitter="full"), max_attempts=3)
    records: list[ConnectionRecord] = []
    starts: list[float] = []
    connect = _scripted([Outcome.REFUSED] * 5, 0.0, starts)
    plan = ConnectionPlan(seq=1, scheduled=trio.current_time(), close=SPEC)
    await run_client(plan, _ctx(), connect, records.append, _interrupted, _failed, config, seed=3)
    assert [r.attempt for r in records] == [1, 2, 3]
    rng = client_rng(3, 1)
    waits = [backoff_delay(config.backoff, n, rng) for n in (1, 2)]
    assert starts[1] - starts[0] == pytest.approx(waits[0], abs=1e-9)
    assert starts[2] - starts[1] == pytest.approx(waits[1], abs=1e-9)


async def test_only_the_listed_outcomes_reconnect(autojump_clock: trio.testing.MockClock) -> None:
    config = ReconnectConfig(on=("abnormal",))
    records: list[ConnectionRecord] = []
    connect = _scripted([Outcome.SERVER_CLOSED], 0.1, [])
    plan = ConnectionPlan(seq=1, scheduled=trio.current_time(), close=SPEC)
    await run_client(plan, _ctx(), connect, records.append, _interrupted, _failed, config, seed=3)
    assert [r.outcome for r in records] == [Outcome.SERVER_CLOSED]


async def test_a_stop_during_the_backoff_records_nothing_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = ReconnectConfig(backoff=Backoff(initial=5.0, jitter="none"))
    ctx = _ctx()
    records: list[ConnectionRecord] = []
    connect = _scripted([Outcome.SERVER_CLOSED] * 3, 1.0, [])
    plan = ConnectionPlan(seq=1, scheduled=trio.current_time(), close=SPEC)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            run_client, plan, ctx, connect, records.append, _interrupted, _failed, config, 1
        )
        await trio.sleep(2.0)  # inside the 5 s wait
        assert ctx.stop is not None
        ctx.stop.set()
    assert [r.attempt for r in records] == [1]


async def test_a_cancelled_attempt_is_recorded_interrupted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = ReconnectConfig(backoff=Backoff(initial=0.5, jitter="none"))
    records: list[ConnectionRecord] = []
    connect = _scripted([Outcome.SERVER_CLOSED] * 3, 1.0, [])
    plan = ConnectionPlan(seq=1, scheduled=trio.current_time(), close=SPEC)
    with trio.move_on_after(2.0):  # attempt 2 runs from 1.5 s to 2.5 s
        await run_client(
            plan, _ctx(), connect, records.append, _interrupted, _failed, config, seed=1
        )
    assert [(r.attempt, r.outcome) for r in records] == [
        (1, Outcome.SERVER_CLOSED),
        (2, Outcome.INTERRUPTED),
    ]


async def test_an_attempt_ended_by_a_wsload_error_is_recorded_and_the_client_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = ReconnectConfig(
        backoff=Backoff(initial=0.5, jitter="none"), on=("server_closed", "internal_error")
    )
    records: list[ConnectionRecord] = []
    scripted = _scripted([Outcome.SERVER_CLOSED, Outcome.CLEAN], 1.0, [])
    raised = [False, True, False]  # the second attempt hits a bug

    async def connect(plan: ConnectionPlan, ctx: DriverContext) -> ConnectionRecord:
        if raised.pop(0):
            raise TypeError("a bug")
        return await scripted(plan, ctx)

    plan = ConnectionPlan(seq=1, scheduled=trio.current_time(), close=SPEC)
    await run_client(plan, _ctx(), connect, records.append, _interrupted, _failed, config, seed=1)
    assert [(r.attempt, r.outcome) for r in records] == [
        (1, Outcome.SERVER_CLOSED),
        (2, Outcome.INTERNAL_ERROR),
        (3, Outcome.CLEAN),
    ]
    assert records[1].detail == "TypeError('a bug')"


async def test_a_reconnected_client_waits_its_hold_not_the_deploys_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = ReconnectConfig(backoff=Backoff(initial=0.1, jitter="none"), hold=5.0)
    timeouts: list[float] = []
    starts: list[float] = []
    scripted = _scripted(
        [Outcome.SERVER_CLOSED, Outcome.ABNORMAL, Outcome.NO_SERVER_CLOSE], 0, starts
    )

    async def connect(plan: ConnectionPlan, ctx: DriverContext) -> ConnectionRecord:
        timeouts.append(plan.close.timeout)
        return await scripted(plan, ctx)

    plan = ConnectionPlan(seq=1, scheduled=trio.current_time(), close=replace(SPEC, timeout=60.0))
    await run_client(plan, _ctx(), connect, lambda _: None, _interrupted, _failed, config, seed=1)
    assert timeouts == [60.0, 5.0, 5.0]  # the first waits for the deploy, the others live 5 s
    clean = replace(plan, close=CloseSpec(kind="clean", label="c", timeout=3.0))
    timeouts.clear()
    scripted = _scripted([Outcome.ABNORMAL, Outcome.CLEAN], 0, starts)
    await run_client(clean, _ctx(), connect, lambda _: None, _interrupted, _failed, config, seed=1)
    assert timeouts == [3.0, 3.0]  # a clean close's timeout bounds its handshake: unchanged


@pytest.mark.parametrize("jitter", ["full", "equal", "none"])
def test_retry_delay_is_the_schedule_of_one_generator_kept(jitter: str) -> None:
    # made again for each wait (a deploy's 100,000 waiting clients keep no generator): the
    # same delays as the client's one generator drawn in order
    backoff = Backoff(initial=0.1, max=3.0, multiplier=2.0, jitter=jitter)  # type: ignore[arg-type]
    rng = client_rng(7, 3)
    kept = [backoff_delay(backoff, n, rng) for n in range(1, 9)]
    assert [retry_delay(backoff, n, 7, 3) for n in range(1, 9)] == kept
