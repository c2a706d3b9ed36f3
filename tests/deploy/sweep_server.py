"""A WebSocket echo server that ends its connections like the seeds' Node ``ws`` sweeps.

Run by the deploy tests as a managed process (``[target.process]``), never imported::

    python sweep_server.py --port P [--sweep soft|hard] [--grace S] [--code 1001]
                           [--on-term sweep|ignore] [--exit-at-once] [--no-listen]
                           [--crash-after S] [--ready-after S] [--tag TEXT]

On SIGTERM (``--on-term sweep``) it stops accepting, sends Close(code) to every client and
then, ``soft``: waits up to ``--grace`` seconds for the close handshakes and drops whoever is
left; ``hard``: drops everyone on the next tick of the event loop. Then it exits 0.
``--ready-after S``: it prints ``sweep_server: ready`` S seconds after it listens (a server whose
port accepts before it says it can serve, for ``ready_line``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from websockets.asyncio.server import ServerConnection, serve


async def _main(args: argparse.Namespace) -> int:
    if args.exit_at_once:
        print("sweep_server: exiting at once as asked", flush=True)
        return 3
    if args.no_listen:
        print("sweep_server: never listening", flush=True)
        await asyncio.sleep(3600)
        return 0
    loop = asyncio.get_running_loop()
    conns: set[ServerConnection] = set()
    stop: asyncio.Future[None] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        conns.add(ws)
        try:
            async for message in ws:
                await ws.send(message)
        except Exception:  # a dropped client is not the server's failure
            pass
        finally:
            conns.discard(ws)

    if args.on_term == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    # websockets' own close timeout far beyond the grace: a client the sweep failed to drop
    # would end 5 s later, a time no busy machine confuses with the grace
    async with serve(handler, "127.0.0.1", args.port, close_timeout=args.grace + 5) as server:
        print(f"sweep_server: listening on {args.port}", flush=True)
        if args.ready_after:  # a port that accepts before the server says it is ready
            await asyncio.sleep(args.ready_after)
            print("sweep_server: ready", flush=True)
        if args.crash_after:
            loop.call_later(args.crash_after, os._exit, 7)
        await stop
        server.close(close_connections=False)
        print(f"sweep_server: SIGTERM, {args.sweep} sweep of {len(conns)}", flush=True)
        closing = [asyncio.create_task(ws.close(args.code, "going away")) for ws in list(conns)]
        if args.sweep == "soft":
            if closing:
                await asyncio.wait(closing, timeout=args.grace)
        else:
            await asyncio.sleep(0)
        for ws in list(conns):
            ws.transport.abort()
        print(f"sweep_server: exiting, {len(conns)} dropped", flush=True)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sweep", choices=("soft", "hard"), default="soft")
    parser.add_argument("--grace", type=float, default=2.0)
    parser.add_argument("--code", type=int, default=1001)
    parser.add_argument("--on-term", choices=("sweep", "ignore"), default="sweep")
    parser.add_argument("--exit-at-once", action="store_true")
    parser.add_argument("--no-listen", action="store_true")
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--crash-after", type=float, default=0.0)
    parser.add_argument("--tag", default="", help="ignored: lets a test find its processes")
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
