"""The wire's time: when the kernel received a reply, on the run's clock, and the loop's delay.

A reply's latency ends when its bytes arrive, not when wsload's event loop gets round to
reading them: on a busy machine the second is later by whatever the loop was doing (other
connections, other processes on the core), and that delay belongs to the generator, not to the
server. Linux stamps every received packet (``SO_TIMESTAMPNS``: the time the network stack
took it in, CLOCK_REALTIME) and hands the stamp of the data a ``recvmsg`` returned as an
``SCM_TIMESTAMPNS`` ancillary message. A client socket on the raw fast path asks for it
(:meth:`WireClock.raw_io`), and every phase end that is a received frame (the 101, an echo, an
expected message, a pong, the server's Close) is stamped with it; the gap between the stamp
and the loop's own reading of the clock is :attr:`WireClock.notice_lag`
(``generator.notice_lag_us``). The kernel stamps data only: a FIN (the server's TCP close, a
0-byte read) carries none, so ``eof`` stays on the loop clock. TLS streams, the trio-websocket
reference engine and platforms without the option keep the loop's stamps; which clock a run
used is ``generator.receive_clock``.

The offset between the two clocks is taken once per Trio run: CLOCK_REALTIME read between two
readings of the run clock (CLOCK_MONOTONIC plus Trio's constant offset), the narrowest of a few
tries, so it is exact to a fraction of a microsecond. It stays right for the run because Linux
advances CLOCK_REALTIME and CLOCK_MONOTONIC at the same rate: NTP's frequency corrections and
slewing apply to both, and only a *step* of the wall clock (``settimeofday``, chrony's
``makestep``, a leap second) moves one against the other. A step during a run would shift the
stamps; a stamp is never taken later than the loop's own reading (it is clamped to it).

Linux stamps incoming packets only while some socket asks for it, and switches that on and off
from a work queue, a moment after the first such socket appears or the last one closes: between
two connections of a slow run no socket would ask, and the first packets of the next one would
arrive unstamped. One socket per process therefore keeps asking for as long as the process
lives (:func:`_keep_timestamping`). A read that still finds no stamp keeps the loop's reading.
"""

from __future__ import annotations

import _socket
import platform
import socket as _stdlib_socket
import sys
import time
from collections.abc import Callable
from time import perf_counter

import trio
from hdrh.histogram import HdrHistogram

from wsload.engine.poller import Poller
from wsload.engine.rawstream import TCP_INQ, RawIO
from wsload.metrics.histograms import HIGHEST_US, Recorder, seconds_to_us

__all__ = ["ACK_GUARD", "JIFFY_MAX", "SO_TIMESTAMPNS", "SystemNow", "WireClock", "reader_of"]

SO_TIMESTAMPNS: int | None = (
    35  # asm-generic's SO_TIMESTAMPNS_OLD: a 64-bit timespec on 64-bit platforms
    if sys.platform == "linux"
    and platform.machine() in ("x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x")
    else None
)
"""The socket option, where its number and stamp layout are known (Python does not name it)."""
_TRIES = 5
ACK_GUARD = 0.030
"""Seconds after wsload's Close went out with its ACK delayed (:meth:`RawIO.delay_ack`) within
which the server's FIN cannot have merged into the unread reply: Linux delays that ACK by at
least ``TCP_DELACK_MIN`` (HZ/25: 40 ms, a timer that may fire up to one tick early, 10 ms at
HZ=100), and merges only into an acknowledged segment. A stamp inside it is exact even when the
read took the FIN too; one outside it (or without the delay) may be the FIN's."""
JIFFY_MAX = 0.010
"""The longest kernel tick (HZ=100): the error of ``TCP_INFO``'s last-receive age, which tells a
reply that came late from the server (its stamp stands) from one the FIN merged into (the FIN
came at least :data:`ACK_GUARD` after it)."""
_KEEPER: list[_stdlib_socket.socket] = []
"""The process's socket that keeps the kernel's receive timestamping on (never closed)."""


def _keep_timestamping(option: int) -> None:
    """Keep the kernel stamping received packets for the rest of the process's life."""
    if _KEEPER:
        return
    keeper = _stdlib_socket.socket(_stdlib_socket.AF_INET, _stdlib_socket.SOCK_DGRAM)
    keeper.setsockopt(_stdlib_socket.SOL_SOCKET, option, 1)
    _KEEPER.append(keeper)


class SystemNow:
    """Trio's ``SystemClock.current_time`` (its offset plus ``perf_counter()``), compiled.

    A connection reads the run clock ≈ 14 times per clean-close cycle; the bound method of
    Trio's clock is an interpreted call each time (≈ 0.3 µs), this one is not. Same sum, same
    order of operands: the same floats as the clock's own reading.
    """

    __slots__ = ("offset",)

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return self.offset + perf_counter()


def reader_of(clock: trio.abc.Clock) -> Callable[[], float]:
    """The cheapest reader of ``clock``'s time: :class:`SystemNow` for Trio's own clock, else
    the clock's ``current_time`` (a test's ``MockClock``)."""
    offset = getattr(clock, "offset", None)
    if type(clock).__name__ == "SystemClock" and isinstance(offset, float):
        return SystemNow(offset)
    return clock.current_time


class WireClock:
    """One Trio run's mapping of kernel receive stamps onto the run clock, and what it saw.

    Attributes:
        offset_ns: CLOCK_REALTIME minus the run clock, in ns; None: no kernel stamps in this
            run (not Linux, or the run's clock is not the system clock: a test's MockClock).
        notice_lag: µs from each stamped arrival to the loop noticing it.
        kernel: connections read with kernel stamps.
        loop: connections read on the loop clock (TLS, reference engine, option refused).
        coalesced: kernel-stamped phase ends whose stamp may be later than their arrival
            (``generator.coalesced_stamps``; see :data:`ACK_GUARD`).
    """

    __slots__ = ("_notice_lag", "coalesced", "kernel", "loop", "offset_ns")

    def __init__(self, offset_ns: int | None = None) -> None:
        self.offset_ns = offset_ns
        self._notice_lag = Recorder()  # one sample per stamped read
        self.kernel = 0
        self.loop = 0
        self.coalesced = 0

    @property
    def notice_lag(self) -> HdrHistogram:
        """µs from each stamped arrival to the loop noticing it (read at the run's end)."""
        return self._notice_lag.histogram()

    @classmethod
    def for_clock(cls, clock: trio.abc.Clock) -> WireClock:
        """The wire clock of a run on ``clock``; kernel stamps only when it is the real one.

        Trio's own ``SystemClock`` is CLOCK_MONOTONIC plus a constant, so a kernel stamp maps
        onto it; any other clock (the autojump ``MockClock`` of the exact-time tests) does not
        follow real time, and its runs keep the loop's stamps.
        """
        if SO_TIMESTAMPNS is None or type(clock).__name__ != "SystemClock":
            return cls()
        try:
            _keep_timestamping(SO_TIMESTAMPNS)
        except OSError:  # the option is refused here: no kernel stamps
            return cls()
        best: tuple[float, int] | None = None
        for _ in range(_TRIES):
            before = clock.current_time()
            real = time.clock_gettime_ns(time.CLOCK_REALTIME)
            after = clock.current_time()
            if best is None or after - before < best[0]:
                best = (after - before, real - round((before + after) * 500_000_000))
        assert best is not None
        return cls(best[1])

    def raw_io(self, raw: _socket.socket, poller: Poller | None = None) -> RawIO:
        """The raw fast path of a client's plain TCP socket, kernel-stamped when possible;
        its reads park in ``poller`` (the run's) when given."""
        if self.offset_ns is not None and SO_TIMESTAMPNS is not None:
            try:
                raw.setsockopt(_stdlib_socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                pass
            else:
                try:  # noqa: SIM105 - per connection: suppress() is three interpreted calls
                    raw.setsockopt(_stdlib_socket.IPPROTO_TCP, TCP_INQ, 1)
                except OSError:  # before Linux 4.18: no FIN hint
                    pass
                self.kernel += 1
                return RawIO(raw.fileno(), raw, self.offset_ns, poller=poller)
        self.loop += 1
        return RawIO(raw.fileno(), poller=poller)

    def arrival(self, io: RawIO | None, now: float) -> float:
        """When the bytes just read arrived: the kernel's stamp, or ``now`` (the loop's
        reading right after the read) when there is none; records the notice lag."""
        arrived = None if io is None else io.arrived
        if arrived is None:
            return now
        if arrived >= now:
            self._notice_lag.record(0)
            return now
        self._notice_lag.record(min(seconds_to_us(now - arrived), HIGHEST_US))
        return arrived
