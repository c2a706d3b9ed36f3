"""wsload's latencies against the wire: a packet capture of the same connections.

A capture on loopback is an independent observer: tcpdump stamps each packet as the kernel
sends it, whatever wsload's event loop is doing. This script starts a real peer (Node ``ws``
from benchmarks/node, else ``wsload serve``), starts tcpdump on ``lo`` for the peer's port,
runs ``wsload run`` at ``--rate`` connections/s with ``--record-connections`` and the URL
``ws://127.0.0.1:PORT/?c={seq}``, stops tcpdump, and matches each captured connection to its
record by the ``c`` in its request line. For every connection and metric it takes
wsload − wire:

- ``handshake``: request sent → the 101 (the wire: the request's packet → the 101's);
- ``message_rtt``: the message sent → its echo;
- ``close_handshake``: our Close sent → the server's Close.

The table's header also gives ``generator.coalesced_stamps``: phase ends whose kernel stamp may
be a later segment's (docs/results.md, "Segments read together").

``--hog`` runs two ``python -c "while 1: pass"`` beside it (one per core), always killed
afterwards. ``--wsload PATH`` measures another wsload (e.g. main's, for a before/after).
Loopback only, bounded: ``--connections`` (at most 20,000) and a deadline on every child;
tcpdump and every child are stopped in ``finally``. Needs root (tcpdump) and
``/usr/bin/tcpdump``. Prints a table, or one JSON object with ``--json``.

    sudo python benchmarks/wire_check.py --connections 5000 --rate 500
    sudo python benchmarks/wire_check.py --connections 5000 --rate 500 --hog
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
TCPDUMP = "/usr/bin/tcpdump"
MAX_CONNECTIONS = 20_000
METRICS = ("handshake", "message_rtt", "close_handshake")
_SEQ = re.compile(rb"[?&]c=(\d+)")
_LINK_HEADER = {0: 4, 1: 14, 113: 16, 276: 20}  # DLT_NULL, EN10MB (lo), LINUX_SLL, SLL2


# -- children ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In each child (``preexec_fn``): SIGKILL when this script dies, however it dies (a
    test's timeout kills it with SIGKILL, and then no ``finally`` runs): no hog, capture or
    peer outlives it. Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a no-op."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """The child's next stdout line, or "" when none came within ``timeout``."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            return line
        if proc.poll() is not None:
            return ""
        time.sleep(0.02)
    return ""


def _start_peer(kind: str) -> tuple[subprocess.Popen[str], int, str]:
    """The peer: (process, port, description)."""
    if kind in ("auto", "node") and shutil.which("node") and shutil.which("npm"):
        if not (NODE_DIR / "node_modules" / "ws").exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
                cwd=NODE_DIR,
                capture_output=True,
                timeout=300,
                check=False,
            )
        if (NODE_DIR / "node_modules" / "ws").exists():
            proc = subprocess.Popen(
                [shutil.which("node") or "node", str(NODE_DIR / "server.js")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=_die_with_parent,
            )
            said = _readline(proc, 30).split()
            if len(said) == 2 and said[0] == "PORT":
                return proc, int(said[1]), "Node ws 8"
            _stop(proc)
    if kind == "node":
        raise SystemExit("--peer node: node/npm or benchmarks/node's ws not available")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsload", "serve", "--host", "127.0.0.1", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent,
    )
    match = re.search(r"ws://127\.0\.0\.1:(\d+)", _readline(proc, 30))
    if match is None:
        _stop(proc)
        raise SystemExit("wsload serve did not start")
    return proc, int(match.group(1)), "wsload built-in server"


def _stop(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM) -> None:
    """Stop and reap ``proc`` (signal, 10 s, then SIGKILL)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _hogs(count: int) -> list[subprocess.Popen[bytes]]:
    hog = [sys.executable, "-c", "while 1: pass"]
    return [subprocess.Popen(hog, preexec_fn=_die_with_parent) for _ in range(count)]


# -- the capture -------------------------------------------------------------------------------


def _packets(path: Path) -> list[tuple[float, int, int, int, int, bytes]]:
    """``(time, sport, dport, tcp seq, flags, payload)`` of every IPv4 TCP packet in ``path``."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack_from(order + "I", data, 20)[0]
    skip = _LINK_HEADER.get(link)
    if skip is None:
        raise SystemExit(f"pcap link type {link} is not handled")
    record = struct.Struct(order + "IIII")
    out = []
    at = 24
    while at + 16 <= len(data):
        seconds, fraction, captured, _ = record.unpack_from(data, at)
        frame = data[at + 16 : at + 16 + captured]
        at += 16 + captured
        ip = frame[skip:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        total = struct.unpack_from(">H", ip, 2)[0]
        tcp = ip[(ip[0] & 15) * 4 : total]
        sport, dport, seq = struct.unpack_from(">HHI", tcp)
        payload = tcp[(tcp[12] >> 4) * 4 :]
        stamp = seconds + fraction * (1e-9 if nano else 1e-6)
        out.append((stamp, sport, dport, seq, tcp[13], payload))
    return out


class _Direction:
    """One direction of one connection: its bytes in order, with ``(end offset, packet time)``
    of each packet (a gap in the capture makes it unusable)."""

    def __init__(self, first: int) -> None:
        self.data = bytearray()
        self.ends: list[tuple[int, float]] = []
        self.expected: int | None = first

    def add(self, seq: int, payload: bytes, stamp: float) -> None:
        if self.expected is None or seq > self.expected:  # a gap: the capture lost a packet
            self.expected = None
            return
        new = payload[self.expected - seq :]
        if new:
            self.data += new
            self.expected += len(new)
            self.ends.append((len(self.data), stamp))


def _streams(
    packets: list[tuple[float, int, int, int, int, bytes]], port: int
) -> list[dict[str, _Direction]]:
    """Each captured connection (a client port may be reused): its two directions."""
    connections: list[dict[str, _Direction]] = []
    current: dict[int, dict[str, _Direction]] = {}
    for stamp, sport, dport, seq, flags, payload in packets:
        client, direction = (sport, "up") if dport == port else (dport, "down")
        if flags & 0x02:  # SYN (a new connection) or SYN-ACK: the stream starts after it
            if direction == "up":
                current[client] = {}
                connections.append(current[client])
            if client in current:
                current[client][direction] = _Direction(seq + 1)
            continue
        flow = current.get(client, {}).get(direction)
        if flow is not None and payload:
            flow.add(seq, payload, stamp)
    return [
        c for c in connections if all(d in c and c[d].expected is not None for d in ("up", "down"))
    ]


def _time_at(ends: list[tuple[int, float]], offset: int) -> float | None:
    """When the packet holding byte ``offset - 1`` went out."""
    for end, stamp in ends:
        if end >= offset:
            return stamp
    return None


def _frames(data: bytes, start: int) -> list[tuple[int, int]]:
    """``(opcode, end offset)`` of each complete WebSocket frame from ``start``."""
    out = []
    at = start
    while at + 2 <= len(data):
        opcode, size, head = data[at] & 15, data[at + 1] & 127, 2
        if size == 126:
            size, head = struct.unpack_from(">H", data, at + 2)[0], 4
        elif size == 127:
            size, head = struct.unpack_from(">Q", data, at + 2)[0], 10
        if data[at + 1] & 128:
            head += 4
        end = at + head + size
        if end > len(data):
            break
        out.append((opcode, end))
        at = end
    return out


def wire_times(pcap: Path, port: int) -> dict[int, dict[str, float]]:
    """Per connection ``c``: the capture's ``handshake``, ``message_rtt``, ``close_handshake``."""
    out: dict[int, dict[str, float]] = {}
    for flow in _streams(_packets(pcap), port):
        up, up_ends = bytes(flow["up"].data), flow["up"].ends
        down, down_ends = bytes(flow["down"].data), flow["down"].ends
        match = _SEQ.search(up[: up.find(b"\r\n")])
        up_body, down_body = up.find(b"\r\n\r\n"), down.find(b"\r\n\r\n")
        if match is None or up_body < 0 or down_body < 0:
            continue
        sent = {op: end for op, end in reversed(_frames(up, up_body + 4))}  # the first of each
        got = {op: end for op, end in reversed(_frames(down, down_body + 4))}
        times: dict[str, float | None] = {}
        request, response = _time_at(up_ends, up_body + 4), _time_at(down_ends, down_body + 4)
        if request is not None and response is not None:
            times["handshake"] = response - request
        for metric, ours, theirs in (("message_rtt", 1, 1), ("close_handshake", 8, 8)):
            if ours in sent and theirs in got:
                a, b = _time_at(up_ends, sent[ours]), _time_at(down_ends, got[theirs])
                if a is not None and b is not None:
                    times[metric] = b - a
        out[int(match.group(1))] = {k: v for k, v in times.items() if v is not None}
    return out


# -- wsload's side -----------------------------------------------------------------------------


def wsload_times(records: Path) -> dict[int, dict[str, float]]:
    """Per connection ``seq``: the same three figures from ``--record-connections``."""
    out: dict[int, dict[str, float]] = {}
    for line in records.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        times = {}
        if r.get("request_sent") is not None and r.get("upgraded") is not None:
            times["handshake"] = r["upgraded"] - r["request_sent"]
        if r.get("message_rtts"):
            times["message_rtt"] = r["message_rtts"][0]
        if r.get("close_sent") is not None and r.get("close_received") is not None:
            times["close_handshake"] = r["close_received"] - r["close_sent"]
        out[int(r["seq"])] = times
    return out


def compare(ours: dict[int, dict[str, float]], wire: dict[int, dict[str, float]]) -> dict[str, Any]:
    """Per metric: connections matched and the p50/p99/max of wsload − wire (µs)."""
    out: dict[str, Any] = {}
    for metric in METRICS:
        diffs = sorted(
            (ours[c][metric] - wire[c][metric]) * 1e6
            for c in ours.keys() & wire.keys()
            if metric in ours[c] and metric in wire[c]
        )
        if not diffs:
            out[metric] = {"matched": 0}
            continue
        wire_p50 = statistics.median(w[metric] for w in wire.values() if metric in w) * 1e6

        def at(q: float, values: list[float] = diffs) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))], 1)

        out[metric] = {
            "matched": len(diffs),
            "p50_us": at(0.5),
            "p90_us": at(0.9),
            "p99_us": at(0.99),
            "max_us": round(diffs[-1], 1),
            "wire_p50_us": round(wire_p50, 1),
        }
    return out


# -- one check ---------------------------------------------------------------------------------


_SCENARIO = """name = "wire_check"
seed = 1
[target]
url = "ws://127.0.0.1:{port}/?c={{seq}}"
[load]
model = "arrival"
rate = {rate}
duration = "{duration}s"
[session]
messages = 1
message_size = 64
[[close]]
kind = "clean"
code = 1000
timeout = "5s"
"""


def check(connections: int, rate: float, *, hog: bool, peer: str, wsload: list[str]) -> dict:
    """One measured run; the figures as a JSON-able dict."""
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise SystemExit(f"--connections must be 1..{MAX_CONNECTIONS}")
    if os.geteuid() != 0 or not os.access(TCPDUMP, os.X_OK):
        raise SystemExit(f"needs root and {TCPDUMP}")
    duration = connections / rate
    tmp = Path(tempfile.mkdtemp(prefix="wire_check-"))
    server = tcpdump = None
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        server, port, description = _start_peer(peer)
        (tmp / "s.toml").write_text(
            _SCENARIO.format(port=port, rate=rate, duration=f"{duration:g}"), encoding="utf-8"
        )
        pcap = tmp / "c.pcap"
        capture = [
            "-i",
            "lo",
            "-n",
            "-U",
            "-Z",
            "root",
            "-B",
            "65536",
            "--time-stamp-precision=nano",
        ]
        tcpdump = subprocess.Popen(
            [TCPDUMP, *capture, "-w", str(pcap), f"tcp port {port}"],
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        assert tcpdump.stderr is not None
        os.set_blocking(tcpdump.stderr.fileno(), False)
        deadline = time.monotonic() + 10
        said = ""
        while "listening" not in said and time.monotonic() < deadline:
            said += tcpdump.stderr.readline()
            time.sleep(0.02)
        hogs = _hogs(2 if hog else 0)
        load = os.getloadavg()[0]
        records = ["--record-connections", str(tmp / "records.jsonl")]
        run = subprocess.run(
            [*wsload, "run", str(tmp / "s.toml"), "--out", str(tmp / "out"), *records],
            capture_output=True,
            text=True,
            timeout=duration + 120,
            check=False,
            preexec_fn=_die_with_parent,
        )
        for proc in hogs:
            _stop(proc, signal.SIGKILL)
        time.sleep(0.5)  # the last packets reach the capture file
        _stop(tcpdump, signal.SIGINT)
        dropped = re.search(r"(\d+) packets dropped by kernel", tcpdump.stderr.read() or "")
        if not (tmp / "records.jsonl").exists():
            raise SystemExit(f"wsload run failed (exit {run.returncode}): {run.stderr[-500:]}")
        summary = json.loads((tmp / "out" / "summary.json").read_text(encoding="utf-8"))
        generator = summary.get("generator", {})
        return {
            "peer": description,
            "connections": connections,
            "rate": rate,
            "hog": hog,
            "load_average_1m": round(load, 2),
            "receive_clock": generator.get("receive_clock", "loop"),
            "notice_lag_us": generator.get("notice_lag_us"),
            "coalesced_stamps": generator.get("coalesced_stamps"),
            "loop_lag_p99_us": generator.get("loop_lag_us", {}).get("p99"),
            "saturated": generator.get("saturated"),
            "capture_dropped": int(dropped.group(1)) if dropped else None,
            "metrics": compare(
                wsload_times(tmp / "records.jsonl"), wire_times(tmp / "c.pcap", port)
            ),
        }
    finally:
        for proc in hogs:
            _stop(proc, signal.SIGKILL)
        _stop(tcpdump, signal.SIGINT)
        _stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"# {result['peer']}, {result['connections']} connections at {result['rate']:g}/s, "
        f"hog={'2 cores' if result['hog'] else 'no'}, load average {result['load_average_1m']}, "
        f"receive_clock={result['receive_clock']}, capture dropped {result['capture_dropped']}, "
        f"coalesced_stamps={result['coalesced_stamps']}",
        f"{'metric':16} {'matched':>7} {'Δp50 µs':>9} {'Δp99 µs':>9} {'Δmax µs':>9} "
        f"{'wire p50 µs':>11}",
    ]
    for metric, m in result["metrics"].items():
        if m["matched"]:
            lines.append(
                f"{metric:16} {m['matched']:7} {m['p50_us']:9} {m['p99_us']:9} "
                f"{m['max_us']:9} {m['wire_p50_us']:11}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--hog", action="store_true", help="a CPU hog on both cores")
    parser.add_argument("--peer", choices=("auto", "node", "builtin"), default="auto")
    parser.add_argument("--wsload", default=None, help="the wsload executable to measure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup in ``finally``
    wsload = [args.wsload] if args.wsload else [sys.executable, "-m", "wsload"]
    result = check(args.connections, args.rate, hog=args.hog, peer=args.peer, wsload=wsload)
    print(json.dumps(result) if args.json else _table(result))


if __name__ == "__main__":
    main()
