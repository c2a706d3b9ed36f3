"""``run_server_cli`` in a real subprocess: the listening line, SIGUSR1 storms, clean exits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
import trio
import trio_websocket
from server_clients import RawClient, Running, ipv6_loopback, trio_ws

from wsload.errors import ToolError
from wsload.scenario.model import ServerConfig
from wsload.server.server import BuiltinServer, run_server_cli

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from wsload.scenario.model import ServerConfig
    from wsload.server.server import run_server_cli

    stats = run_server_cli(
        ServerConfig(shutdown_grace=0.3), sys.argv[1], 0, lambda s: print(s, flush=True)
    )
    print(stats.render())
    print("JSON " + json.dumps(stats.as_dict()))
    """
)


class _Serve:
    """The server script as a child process, its stdout read line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""

    async def line(self) -> str:
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            data = await self.process.stdout.receive_some()
            if not data:
                raise AssertionError(f"child exited; output so far: {self.buffer!r}")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    async def rest(self) -> tuple[str, str]:
        assert self.process.stdout is not None and self.process.stderr is not None
        out = self.buffer
        while data := await self.process.stdout.receive_some():
            out += data
        err = b""
        while data := await self.process.stderr.receive_some():
            err += data
        return out.decode(), err.decode()


async def _start(host: str) -> _Serve:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", _SCRIPT, host],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return _Serve(process)


async def _stop(serve: _Serve) -> None:
    """Reap the child whatever happened (kill if still alive) and close its pipes."""
    with trio.CancelScope(shield=True):
        if serve.process.returncode is None:
            serve.process.kill()
        await serve.process.wait()
        for pipe in (serve.process.stdout, serve.process.stderr, serve.process.stdin):
            if pipe is not None:
                await pipe.aclose()


def _target(line: str) -> Running:
    assert line.startswith("listening on ws://"), line
    address = line.removeprefix("listening on ws://")
    host, _, port = address.rpartition(":")
    return Running(BuiltinServer(ServerConfig()), host.strip("[]"), int(port))


async def test_serve_prints_line_storms_on_sigusr1_and_exits_on_sigint() -> None:
    with trio.fail_after(30):
        serve = await _start("127.0.0.1")
        try:
            target = _target(await serve.line())
            async with trio_ws(target) as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                straggler = await RawClient.connect(target.host, target.port)
                serve.process.send_signal(signal.SIGUSR1)
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await ws.get_message()
                assert closed.value.reason.code == 1001
            close = await straggler.expect_close()
            assert close.code == 1001
            await straggler.expect_eof()  # terminated after the 0.3 s grace
            straggler.close()
            serve.process.send_signal(signal.SIGINT)
            out, err = await serve.rest()
            assert await serve.process.wait() == 0
        finally:
            await _stop(serve)
    assert "Traceback" not in err, err
    assert "built-in server statistics" in out
    stats = json.loads(out.split("JSON ", 1)[1])
    assert stats["upgrades_ok"] == 2
    assert stats["storms"] == 1
    assert stats["storm_closed"] == 2 and stats["storm_terminated"] == 1
    assert stats["close_codes_received"] == {"1001": 1, "1006": 1}
    assert stats["open"] == 0


async def test_sigterm_stops_cleanly_with_connections_open() -> None:
    with trio.fail_after(30):
        serve = await _start("127.0.0.1")
        try:
            target = _target(await serve.line())
            raw = await RawClient.connect(target.host, target.port)
            serve.process.send_signal(signal.SIGTERM)
            await raw.expect_eof()  # stopping closes every socket
            raw.close()
            out, err = await serve.rest()
            assert await serve.process.wait() == 0
        finally:
            await _stop(serve)
    assert "Traceback" not in err, err
    stats = json.loads(out.split("JSON ", 1)[1])
    assert stats["upgrades_ok"] == 1 and stats["open"] == 0


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_listening_line_has_brackets() -> None:
    with trio.fail_after(30):
        serve = await _start("::1")
        try:
            line = await serve.line()
            assert line.startswith("listening on ws://[::1]:")
            async with trio_ws(_target(line)) as ws:
                await ws.send_message("v6")
                assert await ws.get_message() == "v6"
            serve.process.send_signal(signal.SIGINT)
            _, err = await serve.rest()
            assert await serve.process.wait() == 0
        finally:
            await _stop(serve)
    assert "Traceback" not in err, err


def test_port_in_use_raises_tool_error() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        lines: list[str] = []
        with pytest.raises(ToolError, match=rf"cannot listen on 127\.0\.0\.1:{port}"):
            run_server_cli(ServerConfig(), "127.0.0.1", port, lines.append)
        assert lines == []
