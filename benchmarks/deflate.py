"""permessage-deflate's cost per outgoing client message: compression ratio and CPU.

Compares wsload's client compressor (``PerMessageDeflate.encode``: a fresh 12-bit, memLevel-5
zlib context per message, context takeover kept as a 1 KiB preset dictionary) with what it
replaced and what browsers run: one zlib context with zlib's defaults (15-bit window, memLevel
8) kept for the connection's life. Three message streams, each sent over one connection:

- ``chat``: 200 small JSON messages (≈ 100 B), alike but not equal (context takeover matters);
- ``prose``: 20 messages of 2 KiB of English text (this repository's docs);
- ``large``: 4 messages of 64 KiB of the same text (the window matters).

Usage::

    python benchmarks/deflate.py                 # ratio and µs per message (median of 5)
    python benchmarks/deflate.py --only large-after --rounds 1   # one case (for callgrind)

The ratio is deterministic. The µs figure is process CPU time and follows the machine's load;
on a shared machine count instructions instead, e.g. ``valgrind --tool=callgrind python
benchmarks/deflate.py --only chat-after --rounds 1`` against ``--rounds 0``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from wsload.core.deflate import DeflateParams, PerMessageDeflate

__all__ = ["STREAMS", "after", "before"]

_DOCS = b"".join(
    p.read_bytes() for p in sorted((Path(__file__).parent.parent / "docs").glob("*.md"))
)
STREAMS = {
    "chat": [
        b'{"op":"msg","seq":%d,"room":"lobby","user":"user%d","text":"%s"}'
        % (n, n % 9, b"see you at %d" % (n * 7919 % 1000))
        for n in range(200)
    ],
    "prose": [_DOCS[i * 2048 : (i + 1) * 2048] for i in range(20)],
    "large": [_DOCS[i * 65536 : (i + 1) * 65536] for i in range(4)],
}


def before() -> Callable[[bytes], bytes]:
    """One connection's encoder as it was (and as browsers run): one context for its life."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)

    def encode(payload: bytes) -> bytes:
        out = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4]

    return encode


def after() -> Callable[[bytes], bytes]:
    """One connection's encoder now: wsload's client codec, the browsers' offer agreed."""
    codec = PerMessageDeflate(DeflateParams(), client=True, max_message_size=1 << 20)
    return lambda payload: codec.encode(payload)[0]


def _run(make: Callable[[], Callable[[bytes], bytes]], messages: list[bytes]) -> int:
    encode = make()
    return sum(len(encode(message)) for message in messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per case")
    parser.add_argument("--only", help="one case, e.g. chat-after (no output: for callgrind)")
    args = parser.parse_args()
    makers = {"before": before, "after": after}
    if args.only:
        stream, which = args.only.split("-")
        for _ in range(args.rounds * 10):
            _run(makers[which], STREAMS[stream])
        return
    report = {}
    for stream, messages in STREAMS.items():
        raw = sum(map(len, messages))
        for which, make in makers.items():
            wire = _run(make, messages)
            times = []
            for _ in range(args.rounds):
                start = time.process_time()
                for _ in range(10):
                    _run(make, messages)
                times.append((time.process_time() - start) / (10 * len(messages)))
            report[f"{stream}-{which}"] = {
                "messages": len(messages),
                "bytes": raw,
                "ratio": round(raw / wire, 2),
                "cpu_us_per_message": round(statistics.median(times) * 1e6, 1) if times else None,
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
