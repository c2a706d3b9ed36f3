"""wsload's benchmark: client CPU per clean-close cycle, and RSS per held connection.

One command prints everything (``--json`` for machine-readable output)::

    python benchmarks/cycle.py                      # Node ws target if node+npm exist
    python benchmarks/cycle.py --target builtin     # the built-in server (wsload serve)
    python benchmarks/cycle.py --cycles 3000 --runs 5 --held 10000 --json

Method (docs/performance.md): the target runs in its own process pinned to one CPU
(``sched_setaffinity``), every client measurement in a fresh Python process pinned to the other.
The client measures its own CPU time (user + sys, ``getrusage`` around the measured loop, after
a warm-up; start-up excluded), because on a shared machine wall time measures the neighbours.
Each client kind runs ``--runs`` times, interleaved, and the median is reported; the comparison
clients (``benchmarks/bare.py``) run in the same invocation so the figures are ratios.

Peers, when installed (a peer that is not is skipped with the reason): ``picows`` (picows on
uvloop, ``benchmarks/picows_peer.py``; ``pip install -e '.[bench]'``) and ``tsung`` (the Debian
package, installed here when missing; ``benchmarks/tsung_peer.py``), which runs open loop at
``--tsung-rate`` in a network namespace of its own with an echo server of its own, next to
``wsload-open``: wsload open loop at the same rate in the same namespace against the same server.

The Node target is installed by the harness (``npm ci`` in benchmarks/node); without node/npm
the built-in server is used. Both accept permessage-deflate (a client that does not offer it,
as in every cycle measurement, never meets it), so the held-connections measurement runs
without and with compression against the same target.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
# wsload-arrival: the same cycle, open loop (``load.model = "arrival"`` at --rate), for the
# per-connection cost of the schedule against the closed loop of the ``wsload`` kind
# wsload-pure: wsload with its compiled modules switched off (WSLOAD_PURE=1, wsload/_compiled.py)
# wsload-base: the same worker importing another tree's wsload (--base: before/after in one run)
KINDS = (
    "wsload",
    "wsload-pure",
    "wsload-base",
    "wsload-arrival",
    "raw-trio",
    "wsproto",
    "trio-websocket",
    "picows",
    "tsung",
)
NAMESPACED = ("wsload-open", "tsung")
"""Run in Tsung's namespace against its server: ``tsung`` and wsload open loop at its rate."""
REFERENCE = {"tsung": "wsload-open"}
"""The wsload figure a client's ``x wsload`` columns divide by (default: ``wsload``)."""
GOALS = (
    ("raw-trio", "wsload", "<=", 1.3),
    ("picows", "wsload", "<", 1.0),
    ("tsung", "wsload-open", "<", 1.0),
)
"""Issue 27's "Done when": wsload's CPU per cycle ÷ the peer's, (peer, wsload kind, op, bound)."""
HELD = ("held", "held-deflate", "held-lean", "held-script")
"""RSS per held connection without and with permessage-deflate (both targets accept it; the
browsers' offer, then the lean one), and with a session script (held.py's ``SCRIPT``) instead of
echo mode; each then a storm release."""


_HELD_NOTE = {
    "held-deflate": " (permessage-deflate, the browsers' offer)",
    "held-lean": " (permessage-deflate, the lean offer)",
    "held-script": " (session script)",
}


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _cpus() -> tuple[int, int] | None:
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


# -- the target --------------------------------------------------------------------------------


def _node_ready() -> str | None:
    """Why the Node target cannot run (None: it can; ``npm ci`` is run here when needed)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not found"
    if not (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            return f"npm ci failed: {done.stderr.strip()[-300:]}"
    return None


def _start_target(kind: str, prefix: Sequence[str]) -> tuple[subprocess.Popen[str], str, str]:
    """Start the target (its command after ``prefix``); returns (process, url, description)."""
    if kind in ("auto", "node"):
        why = _node_ready()
        if why is None:
            node = shutil.which("node") or "node"
            cmd = [*prefix, node, str(NODE_DIR / "server.js")]
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=_raise_nofile,
            )
            assert proc.stdout is not None
            said = proc.stdout.readline().split()
            if len(said) == 2 and said[0] == "PORT":
                return proc, f"ws://127.0.0.1:{said[1]}/", "Node ws 8 echo server"
            proc.kill()
            raise SystemExit(f"the Node target did not start (said {said!r})")
        if kind == "node":
            raise SystemExit(f"--target node: {why}")
        print(f"# Node target unavailable ({why}): using the built-in server", file=sys.stderr)
    cmd = [*prefix, sys.executable, "-m", "wsload", "serve", "--port", "0"]
    cmd += ["--compression", "deflate"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, preexec_fn=_raise_nofile
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ws://" not in line:
        proc.kill()
        raise SystemExit(f"wsload serve did not start (said {line!r})")
    return proc, line.split()[-1].rstrip("/") + "/", "wsload built-in server (wsload serve)"


@contextmanager
def _running_target(
    kind: str, cpu: int | None, prefix: Sequence[str] = ()
) -> Iterator[tuple[str, str]]:
    """The target, pinned to ``cpu``, while the block runs: (url, description)."""
    proc, url, description = _start_target(kind, prefix)
    try:
        if cpu is not None:
            os.sched_setaffinity(proc.pid, {cpu})
        yield url, description
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _skip_reason(kind: str) -> str | None:
    """Why a peer cannot be measured here (None: it can; Tsung is installed here if missing)."""
    if kind == "picows":
        missing = [m for m in ("picows", "uvloop") if importlib.util.find_spec(m) is None]
        if missing:
            return f"{' and '.join(missing)} not installed (pip install -e '.[bench]')"
    elif kind == "tsung":
        from tsung_peer import tsung_skip_reason

        return tsung_skip_reason()
    return None


# -- one measurement in a fresh, pinned process ------------------------------------------------


def _worker(args: argparse.Namespace) -> None:
    """``--worker KIND``: measure once and print one JSON line."""
    import trio

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    _raise_nofile()
    sys.path.insert(0, str(HERE))
    out: dict[str, Any]
    if args.worker in HELD:
        from held import measure_held

        offer = {"held-deflate": "browser", "held-lean": "lean"}.get(args.worker)
        script = args.worker == "held-script"
        out = trio.run(measure_held, args.url, args.held, offer, script, args.held_size)
    elif args.worker in ("wsload", "wsload-pure", "wsload-arrival"):
        from wsload._compiled import status
        from wsload.runner.modes.calibrate import measure_cycles

        rate = args.rate if args.worker == "wsload-arrival" else None
        run = trio.run(measure_cycles, args.url, args.cycles, args.concurrency, rate)
        import wsload

        out = {**run.as_dict(), "build": status().label, "tree": str(Path(wsload.__file__).parent)}
    elif args.worker == "picows":
        from picows_peer import measure_picows

        clean, user, sys_ = measure_picows(args.url, args.cycles, args.concurrency)
        out = {"clean": clean, **_per_cycle(args.cycles, user, sys_)}
    else:
        from bare import measure_bare

        user, sys_ = trio.run(measure_bare, args.worker, args.url, args.cycles, args.concurrency)
        out = _per_cycle(args.cycles, user, sys_)
    print(json.dumps(out))


def _per_cycle(cycles: int, user: float, sys_: float) -> dict[str, Any]:
    return {
        "cycles": cycles,
        "cpu_us_per_cycle": round((user + sys_) * 1e6 / cycles, 1),
        "user_us_per_cycle": round(user * 1e6 / cycles, 1),
        "sys_us_per_cycle": round(sys_ * 1e6 / cycles, 1),
    }


def _measure(
    kind: str, url: str, args: argparse.Namespace, cpu: int | None, prefix: Sequence[str] = ()
) -> dict[str, Any]:
    rate = args.tsung_rate if kind == "wsload-open" else args.rate
    worker = {"wsload-open": "wsload-arrival", "wsload-base": "wsload"}.get(kind, kind)
    cmd = [*prefix, sys.executable, str(Path(__file__).resolve()), "--worker", worker]
    cmd += ["--url", url, "--cycles", str(args.cycles), "--concurrency", str(args.concurrency)]
    cmd += ["--held", str(args.held), "--held-size", str(args.held_size), "--rate", str(rate)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    env = {**os.environ, "WSLOAD_PURE": "1"} if kind == "wsload-pure" else None
    if kind == "wsload-base":
        env = {**os.environ, "PYTHONPATH": args.base}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return round(statistics.median(values), 1) if values else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("auto", "node", "builtin"), default="auto")
    parser.add_argument("--cycles", type=int, default=3000, help="cycles per measured run")
    parser.add_argument("--runs", type=int, default=5, help="runs per client (median)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="wsload-arrival: connections/s (open loop)"
    )
    parser.add_argument(
        "--compare",
        default="raw-trio,wsproto,trio-websocket",
        help="comparison clients, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--tsung-rate",
        type=float,
        default=2000.0,
        help="tsung and wsload-open: new sessions/s (open loop)",
    )
    parser.add_argument("--held", type=int, default=10000, help="held connections (0: skip)")
    parser.add_argument(
        "--held-size", type=int, default=64, help="bytes of the message each held one echoes"
    )
    parser.add_argument(
        "--base",
        default="",
        help="wsload-base: a directory holding another wsload/ (a checkout, built in place)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    kinds = ["wsload", *[k for k in args.compare.split(",") if k]]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown --compare client(s): {', '.join(unknown)}")
    if "wsload-base" in kinds and not (Path(args.base) / "wsload" / "__init__.py").exists():
        parser.error("--compare wsload-base needs --base DIR with a wsload/ package in it")
    skipped = {k: why for k in kinds if (why := _skip_reason(k)) is not None}
    for kind, why in skipped.items():
        kinds.remove(kind)
        print(f"# {kind} skipped: {why}", file=sys.stderr)
    _raise_nofile()
    pinned = _cpus()
    load = [os.getloadavg()]
    description, runs, held = _campaign(args, kinds, skipped, pinned)
    load.append(os.getloadavg())
    report = _report(args, description, pinned, runs, held)
    report["skipped"] = skipped
    report["load_average"] = {"start": load[0], "end": load[1]}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_text(report))
    return None


def _campaign(
    args: argparse.Namespace,
    kinds: list[str],
    skipped: dict[str, str],
    pinned: tuple[int, int] | None,
) -> tuple[str, dict[str, list[dict[str, Any]]], dict[str, Any] | None]:
    """Every run of every kind, interleaved, then the held connections: (target, runs, held).

    With ``tsung``, a network namespace of its own with a second target inside, where
    ``tsung`` and ``wsload-open`` run; it is deleted at the end with what is left in it.
    """
    target_cpu, client_cpu = pinned if pinned else (None, None)
    with ExitStack() as stack:
        url, description = stack.enter_context(_running_target(args.target, target_cpu))
        if "tsung" in kinds:
            from tsung_peer import Namespace, measure_tsung

            try:
                ns = stack.enter_context(Namespace())
            except OSError as exc:
                skipped["tsung"] = f"no network namespace: {exc}"
                kinds.remove("tsung")
            else:
                ns_url, _ = stack.enter_context(_running_target(args.target, target_cpu, ns.prefix))
                kinds.insert(kinds.index("tsung"), "wsload-open")
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for i in range(args.runs):
            for kind in kinds:
                if kind == "tsung":
                    result = measure_tsung(ns_url, args.cycles, args.tsung_rate, client_cpu, ns)
                elif kind in NAMESPACED:
                    result = _measure(kind, ns_url, args, client_cpu, ns.prefix)
                else:
                    result = _measure(kind, url, args, client_cpu)
                runs[kind].append(result)
                if not args.json:
                    print(f"# run {i + 1}/{args.runs} {kind}: {result}", file=sys.stderr)
        held = None
        if args.held > 0:
            held = {kind: _measure(kind, url, args, client_cpu) for kind in HELD}
    return description, runs, held


def _report(
    args: argparse.Namespace,
    description: str,
    pinned: tuple[int, int] | None,
    runs: dict[str, list[dict[str, Any]]],
    held: dict[str, Any] | None,
) -> dict[str, Any]:
    clients: dict[str, Any] = {}
    for kind, results in runs.items():
        ok = [r for r in results if "error" not in r]
        clients[kind] = {
            "median_cpu_us_per_cycle": _median(ok, "cpu_us_per_cycle"),
            "median_user_us_per_cycle": _median(ok, "user_us_per_cycle"),
            "median_sys_us_per_cycle": _median(ok, "sys_us_per_cycle"),
            "median_cycles_per_s": _median(ok, "cycles_per_s"),
            "runs": results,
        }
    for kind, entry in clients.items():
        base = clients[REFERENCE.get(kind, "wsload")]["median_cpu_us_per_cycle"]
        value = entry["median_cpu_us_per_cycle"]
        entry["ratio_to_wsload"] = round(value / base, 2) if value and base else None
    for other in ("raw-trio", "wsload"):
        for kind, results in runs.items():
            against = REFERENCE.get(kind, "wsload") if other == "wsload" else other
            clients[kind][f"median_run_ratio_to_{other.replace('-', '_')}"] = _run_ratio(
                results, runs.get(against, [])
            )
    side_by_side = []
    for peer, ours, op, bound in GOALS:
        if peer in runs and ours in runs:
            ratio = _run_ratio(runs[ours], runs[peer])
            met = ratio is not None and (ratio < bound if op == "<" else ratio <= bound)
            side_by_side.append(
                {"wsload": ours, "peer": peer, "ratio": ratio, "goal": f"{op} {bound}", "met": met}
            )
    return {
        "target": description,
        "cycles": args.cycles,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "cpus": {"target": pinned[0], "client": pinned[1]} if pinned else None,
        "clients": clients,
        "side_by_side": side_by_side,
        "held": held,
    }


def _run_ratio(runs: list[dict[str, Any]], others: list[dict[str, Any]]) -> float | None:
    """The median of run i's CPU per cycle over the other kind's run i: the two ran back to
    back, so the ratio cancels most of a shared machine's varying load."""
    ratios = [
        r["cpu_us_per_cycle"] / o["cpu_us_per_cycle"]
        for r, o in zip(runs, others, strict=False)
        if "error" not in r and "error" not in o
    ]
    return round(statistics.median(ratios), 2) if ratios else None


def _text(report: dict[str, Any]) -> str:
    lines = [
        f"target: {report['target']}; {report['runs']} runs x {report['cycles']} cycles, "
        f"concurrency {report['concurrency']}, CPUs {report['cpus']}",
        "",
        f"{'client':<16}{'CPU µs/cycle':>14}{'user':>8}{'sys':>8}{'cycles/s':>10}{'x wsload':>10}"
        f"{'runs x wsload':>15}{'runs x raw-trio':>17}",
    ]
    for kind, c in report["clients"].items():
        rate = c["median_cycles_per_s"]
        lines.append(
            f"{kind:<16}{c['median_cpu_us_per_cycle'] or '-':>14}"
            f"{c['median_user_us_per_cycle'] or '-':>8}{c['median_sys_us_per_cycle'] or '-':>8}"
            f"{rate if rate is not None else '-':>10}{c['ratio_to_wsload'] or '-':>10}"
            f"{c['median_run_ratio_to_wsload'] or '-':>15}"
            f"{c['median_run_ratio_to_raw_trio'] or '-':>17}"
        )
    for kind, why in report["skipped"].items():
        lines.append(f"{kind:<16}skipped: {why}")
    if report["side_by_side"]:
        lines.append("")
        lines.append("side by side (wsload ÷ peer, median of per-run ratios; issue 27's goals):")
        for row in report["side_by_side"]:
            ratio = row["ratio"] if row["ratio"] is not None else "-"
            lines.append(
                f"  {row['wsload']} / {row['peer']}: {ratio} (goal {row['goal']}: "
                f"{'met' if row['met'] else 'not met'})"
            )
    load = report["load_average"]
    lines.append("")
    lines.append(
        "load average (1, 5, 15 min): start "
        + " ".join(f"{v:.2f}" for v in load["start"])
        + ", end "
        + " ".join(f"{v:.2f}" for v in load["end"])
    )
    ws = report["clients"]["wsload"]["runs"]
    lags = [r["loop_lag_us"] for r in ws if "loop_lag_us" in r]
    if lags:
        lines.append("")
        lines.append("wsload loop lag per run (µs, p50 / p99 / max):")
        for lag in lags:
            lines.append(f"  {lag['p50']} / {lag['p99']} / {lag['max']}")
    cpu = report["clients"]["wsload"]["median_cpu_us_per_cycle"]
    if cpu:
        lines.append(f"one process ≈ {1e6 / cpu:,.0f} clean-close cycles/s per core (wsload)")
    if report["held"] is not None:
        lines.append("")
        for kind, held in report["held"].items():
            what = "held connections" + _HELD_NOTE.get(kind, "")
            if "error" in held:
                lines.append(f"{what}: failed: {held['error']}")
                continue
            deflated = f", {held['deflated']} deflated" if held.get("compression") else ""
            lines.append(
                f"{what}: {held['held']}/{held['count']} held{deflated}, RSS "
                f"{held['rss_before_bytes'] / 2**20:.1f} MiB -> "
                f"{held['rss_held_bytes'] / 2**20:.1f} MiB = "
                f"{held['rss_per_connection_bytes'] / 1024:.2f} KiB per held connection"
            )
            lines.append(
                f"  storm release: first Close {held['release_to_first_close_ms']} ms, last "
                f"Close {held['release_to_last_close_ms']} ms, all ended "
                f"{held['release_to_all_ended_ms']} ms after the release; "
                f"{held['release_cpu_us_per_connection']} µs CPU per connection"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
