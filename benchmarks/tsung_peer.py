"""The Tsung peer of ``benchmarks/cycle.py``: the same cycle, open loop, in a network namespace.

Tsung (Erlang) is the load tester wsload is most often compared with. It runs here exactly as
a user would run it: the Debian package (installed by :func:`tsung_skip_reason` with apt-get,
like ``tests/debian_packages.py`` does for tests), one ``tsung start`` per measurement, the
controller VM doing the load itself (``use_controller_vm``), pinned to the client CPU with
``taskset``. Its session is wsload's cycle: connect, upgrade, one 64-byte text message (Tsung
waits for the echo), Close 1000, and Tsung closes its socket when the server's Close arrives
(it does not wait for the server's EOF, which Node ``ws`` sends at the same time).

Why a network namespace: Tsung starts an Erlang distribution node and ``epmd``, a daemon that
outlives the run, and listens on ports of its own. In a namespace of our own (:class:`Namespace`)
all of that sees only the namespace's loopback, the echo server runs inside it next to Tsung,
and deleting the namespace ends every process left in it (only ours can be there).

CPU per cycle: Tsung's arrivals are its own (Poisson at ``rate`` new sessions/s), and a
``tsung start`` spends a second or so of CPU starting and stopping the VM. So each
measurement is two runs, ``base`` sessions and ``base + cycles`` sessions, and the figure is the
difference of their CPU (user + sys of the whole ``tsung`` process tree, from ``getrusage`` of
the reaped children) over the difference of their sessions: start-up and shutdown cancel out.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Namespace", "measure_tsung", "tsung_skip_reason"]

TSUNG = "/usr/bin/tsung"
_TESTS = Path(__file__).resolve().parents[1] / "tests"
_BASE = 500
"""Sessions of the reference run whose CPU (start-up, shutdown, first sessions) is subtracted."""
_TIMEOUT = 300.0

_CONFIG = """<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="error" dumptraffic="false">
  <clients><client host="localhost" use_controller_vm="true" maxusers="{maxusers}"/></clients>
  <servers><server host="{host}" port="{port}" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="{duration}" unit="second">
      <users maxnumber="{sessions}" arrivalrate="{rate}" unit="second"/>
    </arrivalphase>
  </load>
  <sessions>
    <session name="cycle" probability="100" type="ts_websocket">
      <request><websocket type="connect" path="/"></websocket></request>
      <request><websocket type="message" frame="text">{payload}</websocket></request>
      <request><websocket type="close"></websocket></request>
    </session>
  </sessions>
</tsung>
"""


def tsung_skip_reason() -> str | None:
    """None when Tsung can run here (installing it first when missing), else why not."""
    if os.geteuid() != 0:
        return "Tsung runs in a network namespace of its own, which needs root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) to make the network namespace"
    if shutil.which("taskset") is None:
        return "no `taskset` command to pin Tsung to the client CPU"
    sys.path.insert(0, str(_TESTS))
    from debian_packages import apt_install_skip_reason

    return apt_install_skip_reason("tsung", TSUNG, timeout=900)


class Namespace:
    """A network namespace of our own with its loopback up; deleting it ends what is left in it.

    Use as a context manager; entering raises ``OSError`` (with ``ip``'s message) when the
    namespace cannot be made (e.g. a container without ``CAP_SYS_ADMIN``).
    """

    def __init__(self) -> None:
        self.name = f"wsload-bench-{os.getpid()}"

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def __enter__(self) -> Namespace:
        for cmd in (["add", self.name], ["exec", self.name, "ip", "link", "set", "lo", "up"]):
            done = subprocess.run(
                ["ip", "netns", *cmd], capture_output=True, text=True, timeout=30, check=False
            )
            if done.returncode != 0:
                self.__exit__()
                raise OSError(f"ip netns {' '.join(cmd)}: {done.stderr.strip()}")
        return self

    def __exit__(self, *_: object) -> None:
        # what is left in it was started by us (epmd, above all): TERM, then KILL what stays
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self._pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while pids and self._pids() and time.monotonic() < deadline:
                time.sleep(0.05)
        subprocess.run(
            ["ip", "netns", "delete", self.name], capture_output=True, timeout=30, check=False
        )

    def _pids(self) -> list[int]:
        done = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, timeout=30
        )
        return [int(word) for word in done.stdout.split()] if done.returncode == 0 else []


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _counts(log: str) -> dict[str, int]:
    """The cumulative count of every ``stats: NAME interval total`` line (the last dump's)."""
    counts: dict[str, int] = {}
    for name, total in re.findall(r"^stats: (\S+) \d+ (\d+)$", log, re.MULTILINE):
        counts[name] = int(total)
    return counts


def _run(url: str, sessions: int, rate: float, cpu: int | None, ns: Namespace) -> dict[str, Any]:
    """One ``tsung start`` of ``sessions`` sessions: its process tree's CPU and its counts."""
    parts = urlsplit(url)
    with tempfile.TemporaryDirectory(prefix="wsload-tsung-") as tmp:
        config = Path(tmp) / "cycle.xml"
        config.write_text(
            _CONFIG.format(
                maxusers=sessions + 1000,
                host=parts.hostname,
                port=parts.port,
                duration=math.ceil(3 * sessions / rate) + 10,  # maxnumber ends it first
                sessions=sessions,
                rate=rate,
                payload="x" * 64,
            )
        )
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        cmd = [*pin, *ns.prefix, TSUNG, "-n", "-w", "0", "-f", str(config), "-l", tmp, "start"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env={**os.environ, "HOME": tmp},  # Tsung writes ~/.tsung
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_raise_nofile,
        )
        try:
            _out, err = proc.communicate(timeout=_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"error": [f"tsung did not finish {sessions} sessions in {_TIMEOUT:.0f} s"]}
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        logs = sorted(Path(tmp).glob("*/tsung.log"))
        if proc.returncode != 0 or not logs:
            return {"error": [f"tsung exited {proc.returncode}: {err.strip()[-300:]}"]}
        return {
            "user_s": after.ru_utime - before.ru_utime,
            "sys_s": after.ru_stime - before.ru_stime,
            "wall_s": wall,
            "counts": _counts(logs[-1].read_text()),
        }


def measure_tsung(
    url: str, cycles: int, rate: float, cpu: int | None, ns: Namespace
) -> dict[str, Any]:
    """Tsung's CPU per cycle at ``rate`` new sessions/s: ``cycles`` more sessions than the
    reference run, the difference of the two runs' CPU over the difference of their sessions.

    ``url`` is the echo server inside ``ns``. Returns the fields of the other clients' runs
    (``cycles``, ``clean``, ``cpu_us_per_cycle``, ``user_us_per_cycle``, ``sys_us_per_cycle``)
    plus Tsung's own counters of the larger run, or ``{"error": [...]}``.
    """
    small = _run(url, _BASE, rate, cpu, ns)
    if "error" in small:
        return small
    big = _run(url, _BASE + cycles, rate, cpu, ns)
    if "error" in big:
        return big
    done = {k: big["counts"].get(k, 0) - small["counts"].get(k, 0) for k in big["counts"]}
    n = done.get("finish_users_count", 0)
    if n <= 0:
        return {"error": [f"tsung finished no more sessions in the larger run: {big['counts']}"]}
    errors = sum(v for k, v in done.items() if k.startswith("error"))
    user, sys_ = big["user_s"] - small["user_s"], big["sys_s"] - small["sys_s"]
    return {
        "cycles": n,
        "clean": done.get("websocket_succ", 0) - errors,
        "cpu_us_per_cycle": round((user + sys_) * 1e6 / n, 1),
        "user_us_per_cycle": round(user * 1e6 / n, 1),
        "sys_us_per_cycle": round(sys_ * 1e6 / n, 1),
        "tsung_counts": big["counts"],
        "tsung_runs_wall_s": [round(small["wall_s"], 2), round(big["wall_s"], 2)],
    }
