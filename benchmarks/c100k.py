"""100,000 connections on one machine: a storm and a deploy against the built-in server.

Runs ``wsload run`` (a real subprocess, sized by the plan alone: no ``--workers``, no
``source_addresses``; ``wsload/runner/modes/machine.py`` picks them) twice:

- **storm**: ``--connections`` opened at ``--rate`` per second (one 64-byte echo each), held,
  released at one instant (clean closes). Goals: 100 % ``clean``; no worker saturated (loop lag
  p99 under the saturation line in every segment); release → last close begun (the clean
  behaviour's first act is writing its Close) ≤ 1 s (``close_start_lag.max``); generator RSS
  (the ``wsload run`` process and its workers, not the built-in server's processes) ≤ 1.5 GB
  summed, at its peak.
- **deploy**: the same connections, then ``[[target.process.events]]`` makes the built-in
  server sweep them (every process sends 1001 Going Away, then terminates the rest after the
  grace: a soft sweep), every client reconnects with full-jitter backoff spread over
  ``--spread`` seconds (default: as long as the opening took), holds, and closes. Goals:
  100 % closed clean by the sweep, 100 % of the logical clients reconnected, RSS as above.
  With ``--server node`` the deploy's target is Node ``ws`` instead
  (``scenarios/servers/deploy_server.js --processes N``: N processes sharing the port through
  Node's ``cluster``, as one holds at most the file limit's connections) started by
  ``[target.process]``: the event's SIGTERM goes to its primary, which forwards it; each worker
  sends 1001 to its clients, terminates the rest after the grace and exits once it has none left,
  the primary exits after them and wsload starts it again (``restart``): the reconnects that come
  while it is down are refused and retried. The storm always runs against the built-in server.

It prints the figures (``--json``: as JSON) and exits 1 when a goal is missed. RSS is sampled
every ``--every`` seconds from ``/proc``: the built-in server's processes are the descendants
holding a listening TCP socket, and are left out. With each run it gives how busy the
machine's CPUs were and the seconds its host stole from them (``machine``, from ``/proc/stat``).

    python benchmarks/c100k.py                        # 100,000 at 1,000/s, storm then deploy
    python benchmarks/c100k.py --connections 10000 --only storm
    python benchmarks/c100k.py --only deploy --server node   # node and npm needed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SATURATION_US = 20_000  # wsload.runner.load.lag.SATURATION_US
RELEASE_GOAL_US = 1_000_000
RSS_GOAL = 1.5e9
HOLD_S = 10
"""Each reconnected client holds this long (``[reconnect] hold``) before its own close."""
SWEEP_SLACK = 0.2
"""The sweep comes at the planned opening × (1 + this) + ``HOLD_S`` (a loaded machine opens a
little late, and a sweep of a half-open storm is not the deploy asked for)."""
SWEEP_WAIT_S = 60
"""The first connection's wait for the sweep's Close lasts from the release (the planned opening
+ 1 s) to the sweep, and this much more: a sweep of 100,000 on this machine took 4-36 s to
reach them all."""
GRACE_S = 30
"""The server's sweep: 1001 Going Away to everyone, and the rest terminated after this long
(Node ``ws``'s own ``closeTimeout``)."""
DRAIN_SLACK_S = 60
"""The drain (from the release) outlasts the sweep, the reconnects' spread and their hold by
this much."""
NODE_PER_PROCESS = 18_000
"""Connections per Node server process (``--server node``): under one process's file limit of
20,000 with room for the reconnects that come while the swept ones close."""
NODE_SERVER = Path(__file__).resolve().parents[1] / "scenarios" / "servers" / "deploy_server.js"
SERVER_NAMES = frozenset({"node"})
"""Descendants with this command name are the target's (a Node cluster's workers hold no
listening socket: the primary accepts for them)."""
_PAGE = os.sysconf("SC_PAGE_SIZE")

COMMON = """
seed = 1
[target]
url = "builtin"
connect_timeout = "30s"
handshake_timeout = "30s"
[load]
model = "storm"
concurrency = {n}
rate = {rate}
open_deadline = "{deadline}s"
drain = "{drain}s"
[session]
messages = 1
message_size = 64
"""

STORM = """name = "c100k-storm"
{common}
[[close]]
kind = "clean"
timeout = "30s"
"""

DEPLOY = """name = "c100k-deploy"
{common}
{server}
[[target.process.events]]
at = "{at}s"
signal = "SIGTERM"
[[close]]
kind = "await_server_close"
timeout = "{wait}s"
[reconnect]
hold = "{hold}s"
on = [
  "server_closed", "abnormal", "refused", "reset", "handshake_timeout", "connect_timeout",
  "handshake_invalid",
]
backoff = {{ initial = "{spread}s", max = "{spread}s", multiplier = 2, jitter = "full" }}
max_attempts = 20
"""


BUILTIN_SERVER = """
[target.server]
shutdown_code = 1001
shutdown_grace = "{grace}s"
[target.process]"""

NODE = """
[target.process]
command = {command}
port = 0
ready_timeout = "120s"
ready_line = "listening on [0-9]+ in [0-9]+ processes"
restart = true
max_restarts = 1
stop_signal = "SIGTERM"
stop_timeout = "{stop}s"
"""
"""``--server node``: the deploy's target (``[target] url`` is ``ws://127.0.0.1:{{port}}/``).
``ready_timeout``: the first start may run ``npm ci``. ``ready_line``: the port accepts as soon
as the first worker listens, and until every worker does the primary holds what the first has
not taken yet (a slow start has taken it past the file limit: the rest closed or reset)."""


def node_processes(n: int) -> int:
    """The Node server's processes for ``n`` connections (``NODE_PER_PROCESS`` each; at least
    2, so that a small run takes the same path)."""
    return max(2, math.ceil(n / NODE_PER_PROCESS))


def scenarios(
    n: int,
    rate: float,
    spread: float,
    server: str = "builtin",
    processes: int | None = None,
    sweep_after: float | None = None,
) -> dict[str, str]:
    """The two scenarios' TOML for ``n`` connections opened at ``rate`` per second; the
    deploy's target is the built-in server or (``server = "node"``) Node ``ws`` in
    ``processes`` processes (default: ``node_processes(n)``); its sweep ``sweep_after``
    seconds after the planned opening (default: ``SWEEP_SLACK`` of it + ``HOLD_S``)."""
    opening = n / rate
    deadline = round(opening + 60)
    after = opening * SWEEP_SLACK + HOLD_S if sweep_after is None else sweep_after
    at = round(opening + after)
    wait = round(at - opening) + SWEEP_WAIT_S
    deploy_drain = round(wait + spread + HOLD_S + DRAIN_SLACK_S)
    common = COMMON.format(n=n, rate=rate, deadline=deadline, drain=deploy_drain)
    if server == "node":
        argv = ["node", str(NODE_SERVER), "--port", "{port}", "--sweep", "soft"]
        argv += ["--grace", str(GRACE_S * 1000), "--code", "1001"]
        argv += ["--processes", str(processes or node_processes(n))]
        target = NODE.format(command=json.dumps(argv), stop=GRACE_S + 30)
        common = common.replace('url = "builtin"', 'url = "ws://127.0.0.1:{port}/"')
    else:
        target = BUILTIN_SERVER.format(grace=GRACE_S)
    return {
        "storm": STORM.format(common=COMMON.format(n=n, rate=rate, deadline=deadline, drain=90)),
        "deploy": DEPLOY.format(
            common=common,
            server=target,
            at=at,
            wait=wait,
            hold=HOLD_S,
            spread=spread,
        ),
    }


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _listening_inodes() -> set[str]:
    """The inodes of the machine's listening TCP sockets: from ``ss -ltne`` (the kernel
    dumps its listening sockets only), else from ``/proc/net/tcp``, which lists every socket
    (the kernel walks them all at each read: 0.49 CPU-seconds at 184,000 sockets; read once a
    second while the workers were young, it took most of a core from a 30,000 storm's first
    20 s, measured with py-spy)."""
    try:
        listed = subprocess.run(
            ["ss", "-Hltne"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listed = None
    if listed is not None:
        return {f[4:] for f in listed.split() if f.startswith("ino:")}
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _listens(pid: int, inodes: set[str]) -> bool:
    """``pid`` holds one of ``inodes`` among its first file descriptors (a server listens on
    one it opened early; reading all of a worker's 20,000 would cost a core)."""
    try:
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))[:48]
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _age_s(pid: int) -> float | None:
    """Seconds since ``pid`` started (``/proc/PID/stat`` starttime against ``/proc/uptime``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """The generator's summed RSS (``root`` and its descendants but the servers), sampled.

    A process is told a server by the listening socket it holds, looked for only while it is
    younger than ``CLASSIFY_S`` (a server listens within its start timeout, before the load):
    ``/proc/net/tcp`` lists every socket of the machine, 200,000 lines once the storm is open:
    one read took 0.49 CPU-seconds at 184,000 sockets, and the sampler used to read it (and list
    every worker's 17,000 descriptors) every second, half a core the run's processes needed."""

    CLASSIFY_S = 20.0

    def __init__(self, root: int, every: float) -> None:
        self.root, self.every = root, every
        self.peak = 0
        self.peak_processes = 0
        self.servers: set[int] = set()
        self.settled: set[int] = set()  # classified for good (old enough)
        self.server_cpu: dict[int, float] = {}
        self.cpu: dict[int, float] = {}  # the generator's processes
        self.timeline: list[tuple[float, float, float]] = []  # (s, generator CPU, server CPU)
        self.started = time.monotonic()
        self.done = threading.Event()

    def _classify(self, pids: list[int]) -> None:
        young = [pid for pid in pids if pid not in self.settled and pid != self.root]
        if not young:
            return
        # by name first: a Node server restarted mid-run costs no read of /proc/net/tcp
        self.servers.update(pid for pid in young if _command_name(pid) in SERVER_NAMES)
        unknown = [pid for pid in young if pid not in self.servers]
        inodes = _listening_inodes() if unknown else set()
        for pid in young:
            if pid not in self.servers and _listens(pid, inodes):
                self.servers.add(pid)
            age = _age_s(pid)
            if pid in self.servers or age is None or age > self.CLASSIFY_S:
                self.settled.add(pid)

    def sample(self) -> None:
        pids = _descendants(self.root)
        self._classify(pids)
        total = processes = 0
        for pid in pids:
            if pid in self.servers:
                self.server_cpu[pid] = _cpu_seconds(pid) or self.server_cpu.get(pid, 0.0)
                continue
            self.cpu[pid] = _cpu_seconds(pid) or self.cpu.get(pid, 0.0)
            try:
                resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, ValueError, IndexError):
                continue
            total += resident * _PAGE
            processes += 1
        if total > self.peak:
            self.peak, self.peak_processes = total, processes
        elapsed = round(time.monotonic() - self.started, 1)
        generator, server = sum(self.cpu.values()), sum(self.server_cpu.values())
        self.timeline.append((elapsed, round(generator, 1), round(server, 1)))

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.sample()


_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _cpu_times() -> dict[str, float]:
    """The machine's CPU seconds so far by kind (``/proc/stat``'s first line; empty elsewhere).

    Its ``steal`` is the time the host ran something else while this VM's CPUs wanted to run:
    a run that lost cores to other guests is told from one whose own work cost more."""
    try:
        line = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    except (OSError, IndexError):
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    return {kind: int(v) / tick for kind, v in zip(_STAT_FIELDS, line[1:], strict=False)}


def _machine(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The machine over one run: how busy its CPUs were, and the seconds the host stole
    (empty where ``/proc/stat`` could not be read)."""
    if not before or not after:
        return {}
    spent = {kind: after[kind] - before[kind] for kind in before if kind in after}
    total = sum(spent.values())
    idle = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
    return {
        "busy_share": round(1 - idle / total, 3) if total else 0.0,
        "steal_s": round(spent.get("steal", 0.0), 1),
    }


def run_one(name: str, text: str, work: Path, every: float) -> dict[str, Any]:
    """Run one scenario with ``wsload run``; its summary, segment summaries and peak RSS."""
    path = work / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    out = work / name
    argv = [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out)]
    started = time.monotonic()
    load_before = os.getloadavg()
    cpu_before = _cpu_times()
    proc = subprocess.Popen(
        [*argv, "--quiet", "--no-report", "--force"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = RssSampler(proc.pid, every)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        _, stderr = proc.communicate(timeout=700)
    finally:
        sampler.done.set()
        thread.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    segments = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((out / "segments").glob("*/summary.json"))
    ]
    return {
        "exit": proc.returncode,
        "stderr": stderr,
        "wall_s": round(time.monotonic() - started, 1),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "machine": _machine(cpu_before, _cpu_times()),
        "rss_peak_bytes": sampler.peak,
        "rss_processes": sampler.peak_processes,
        "server_cpu_seconds": round(sum(sampler.server_cpu.values()), 1),
        "cpu_timeline": sampler.timeline,
        "summary": summary,
        "segments": segments or [summary],
    }


def _pass_ms(segment: dict[str, Any]) -> float | None:
    """One worker's release pass: its own release → its last close begun (ms); the shared
    instant's figure less how late the worker released."""
    last = segment["latency_us"].get("close_start_lag", {}).get("max")
    release = segment["generator"].get("storm_release_s") or {}
    if last is None or release.get("planned") is None:
        return None if last is None else round(last / 1000, 1)
    return round(last / 1000 - (release["first"] - release["planned"]) * 1000, 1)


def figures(name: str, run: dict[str, Any]) -> dict[str, Any]:
    """The goals' figures of one run, and whether each held."""
    summary = run["summary"]
    totals, generator = summary["totals"], summary["generator"]
    lags = [seg["generator"]["loop_lag_us"].get("p99") or 0 for seg in run["segments"]]
    starts = [seg["generator"]["start_lag_us"].get("p99") or 0 for seg in run["segments"]]
    out: dict[str, Any] = {
        "connections": totals["attempted"],
        "clean": summary["outcomes"].get("clean", 0),
        "workers": generator.get("workers", generator["processes"]),
        "server_processes": summary.get("target", {}).get("server_processes"),
        "source_addresses": len(summary.get("target", {}).get("source_addresses", [])) or 1,
        "decisions": generator.get("decisions", []),
        "loop_lag_p99_us": lags,
        "start_lag_p99_us": starts,
        "saturated": [bool(seg["generator"]["saturated"]) for seg in run["segments"]],
        "cpu_seconds": generator["cpu_seconds"],
        "cpu_wait_s": [seg["generator"].get("cpu_wait_s") for seg in run["segments"]],
        "server_cpu_seconds": run["server_cpu_seconds"],
        # the generator's: its workers' load (start-up left out); the server's: its processes'
        # whole lives (start-up, ≈ 0.4 s each, included)
        "cpu_us_per_connection": {
            "generator": round(generator["cpu_seconds"] / max(1, totals["attempted"]) * 1e6),
            "server": round(run["server_cpu_seconds"] / max(1, totals["attempted"]) * 1e6),
        },
        "cpu_timeline": run["cpu_timeline"],
        "rss_peak_mb": round(run["rss_peak_bytes"] / 1e6),
        "wall_s": run["wall_s"],
        "load_average": run["load_average"],
        "machine": run["machine"],
        "exit": run["exit"],
    }
    goals = {
        "unsaturated": not any(out["saturated"]) and max(lags, default=0) < SATURATION_US,
        "rss": run["rss_peak_bytes"] <= RSS_GOAL,
    }
    if name == "storm":
        release = summary["latency_us"].get("close_start_lag", {})
        out["release_to_last_close_us"] = release.get("max")
        out["storm_release_s"] = generator.get("storm_release_s")
        out["worker_pass_ms"] = [_pass_ms(seg) for seg in run["segments"]]
        goals["clean"] = out["clean"] == out["connections"] > 0
        goals["release"] = (release.get("max") or 1e12) <= RELEASE_GOAL_US
    else:
        event = (summary.get("events") or [{}])[0]
        reconnect = summary.get("reconnect") or {}
        out["open_at_signal"] = event.get("open_at_signal")
        out["closed_clean"] = event.get("closed_clean")
        out["reconnect"] = {
            key: reconnect.get(key) for key in ("clients", "reconnected", "gave_up", "clean")
        }
        out["time_to_reconnect_us"] = (reconnect.get("latency_us") or {}).get("time_to_reconnect")
        # a reconnected client whose echo never came back (message_timeout) reconnected, but its
        # session failed: counted apart
        out["echo_timeouts"] = summary["outcomes"].get("message_timeout", 0)
        goals["swept_clean"] = bool(out["open_at_signal"]) and (
            out["closed_clean"] == out["open_at_signal"]
        )
        goals["reconnected"] = bool(reconnect.get("clients")) and (
            reconnect.get("reconnected") == reconnect.get("clients")
        )
        goals["echoed"] = out["echo_timeouts"] == 0
        process = summary.get("server_process")
        if process is not None:  # --server node: the signalled process exits, wsload restarts it
            out["server_processes"] = run.get("server_processes")
            out["exit_s"] = event.get("exit_s")
            out["restarts"] = process.get("restarts")
            out["exit_statuses"] = [r.get("exit_status") for r in process.get("runs", [])]
            goals["restarted"] = out["restarts"] == 1 and out["exit_statuses"] == [0, 0]
    out["goals"] = goals
    return out


def _print(name: str, fig: dict[str, Any]) -> None:
    load = fig["load_average"]
    print(f"== {name}: {fig['connections']:,} connections, {fig['wall_s']} s, exit {fig['exit']}")
    for note in fig["decisions"]:
        print(f"   wsload: {note}")
    print(
        f"   clean {fig['clean']:,}; {fig['workers']} workers, {fig['server_processes']} server "
        f"processes, {fig['source_addresses']} source address(es)"
    )
    lags = ", ".join(f"{lag / 1000:.1f}" for lag in fig["loop_lag_p99_us"])
    starts = ", ".join(f"{lag / 1000:.1f}" for lag in fig["start_lag_p99_us"])
    print(f"   loop lag p99 per worker (ms): {lags}; saturated: {fig['saturated']}")
    print(f"   start lag p99 per worker (ms): {starts}")
    print(f"   CPU wait per worker (s, runnable without a CPU): {fig['cpu_wait_s']}")
    if name == "storm":
        last = fig["release_to_last_close_us"]
        print(
            f"   release -> last close begun: {'-' if last is None else f'{last / 1000:.0f} ms'}"
            f"; storm_release_s {fig['storm_release_s']}"
        )
        print(f"   each worker's own pass, release -> last close (ms): {fig['worker_pass_ms']}")
    else:
        print(
            f"   sweep: {fig['closed_clean']} of {fig['open_at_signal']} closed clean; "
            f"reconnect {fig['reconnect']}; echoes timed out: {fig['echo_timeouts']:,}"
        )
        if "restarts" in fig:
            print(
                f"   Node ws server: exited {fig['exit_s']} s after the signal, restarts "
                f"{fig['restarts']}, exit statuses {fig['exit_statuses']}"
            )
    print(
        f"   generator RSS peak {fig['rss_peak_mb']:,} MB (summed), CPU {fig['cpu_seconds']} s "
        f"(server {fig['server_cpu_seconds']} s; µs per connection: "
        f"{fig['cpu_us_per_connection']}); "
        f"load average {load['before'][0]:.2f} -> {load['after'][0]:.2f}"
    )
    machine = fig["machine"]
    if machine:
        print(
            f"   the machine's CPUs {machine['busy_share']:.0%} busy through the run; "
            f"stolen by the host: {machine['steal_s']} s"
        )
    print(f"   goals: {fig['goals']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--spread", type=float, default=None, help="reconnect backoff (s)")
    parser.add_argument("--only", choices=("storm", "deploy"), default=None)
    parser.add_argument(
        "--server",
        choices=("builtin", "node"),
        default="builtin",
        help="the deploy's target (the storm's is the built-in server)",
    )
    parser.add_argument(
        "--server-processes", type=int, default=None, help="--server node: its processes"
    )
    parser.add_argument(
        "--sweep-after",
        type=float,
        default=None,
        help="the deploy's sweep this long after the planned opening (s; default: "
        f"{SWEEP_SLACK:g} of the opening + {HOLD_S} s)",
    )
    parser.add_argument("--every", type=float, default=1.0, help="RSS sample period (s)")
    parser.add_argument("--out", type=Path, default=None, help="keep the results here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    # the reconnects come back at the opening's rate (at least over 5 s)
    spread = args.spread if args.spread is not None else max(5.0, args.connections / args.rate)
    if args.server == "node" and shutil.which("node") is None:
        parser.error("--server node: node is not on PATH (and npm is needed for its first run)")
    processes = args.server_processes or node_processes(args.connections)
    texts = scenarios(args.connections, args.rate, spread, args.server, processes, args.sweep_after)
    names = [args.only] if args.only else ["storm", "deploy"]
    with tempfile.TemporaryDirectory(prefix="c100k-") as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = {}
        for name in names:
            run = run_one(name, texts[name], work, args.every)
            run["server_processes"] = processes if args.server == "node" else None
            error = run["summary"].get("error")
            if error is not None:  # the run did not finish: no figures, say why and stop
                print(f"c100k: the {name} run did not finish: {error}", file=sys.stderr)
                print(run["stderr"][-3000:], file=sys.stderr)
                return 1
            results[name] = figures(name, run)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, fig in results.items():
            _print(name, fig)
    return 0 if all(all(fig["goals"].values()) for fig in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
