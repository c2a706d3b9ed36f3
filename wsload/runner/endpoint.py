"""The ``/metrics`` HTTP endpoint of a run (``--metrics-port``), served from a thread.

The figures themselves are ``wsload.report.prometheus.Exposition`` (a pure renderer of
interval snapshots); this module only owns the listening socket and its thread, so that the
report layer stays free of I/O. ``RunFrame`` opens it before the results directory exists (a
port in use is a usage error, exit 2, with nothing written) and closes it last.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from wsload.errors import UsageError
from wsload.report.prometheus import Exposition

__all__ = ["DEFAULT_HOST", "DEFAULT_LINGER_S", "MetricsEndpoint", "serve_metrics"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_LINGER_S = 5.0
_CLOSE_TIMEOUT = 5.0
"""How long closing waits for the server thread (it polls for shutdown every 0.5 s)."""


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """Where ``/metrics`` is served, and how long it waits for a last scrape at the end.

    Attributes:
        port: TCP port (0: any free one; ``Exposition.url`` names it).
        host: address to listen on (loopback by default: the figures name the target).
        linger_s: once the results are written, keep serving until a scrape has read the
            final figures, at most this long (0: close at once). A scraper polling every
            ``scrape_interval`` gets its last scrape in if this is at least that interval.
    """

    port: int
    host: str = DEFAULT_HOST
    linger_s: float = DEFAULT_LINGER_S


class _Body:
    """A WSGI response body that reports when the server has finished sending it."""

    def __init__(self, chunks: Iterable[bytes], done: Callable[[], None]) -> None:
        self._chunks = chunks
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:  # wsgiref calls it once the response is written (or failed)
        self._done()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line on stderr per scrape."""


@contextlib.contextmanager
def serve_metrics(endpoint: MetricsEndpoint) -> Iterator[Exposition]:
    """Serve ``/metrics`` for the duration of the ``with`` block, from a daemon thread.

    Listens at once, so a port in use fails before anything is run or written. On leaving
    the block the server stops within a second (it polls for shutdown every 0.5 s); a scrape
    still being answered runs in a daemon thread of its own and is not waited for (the final
    one is, through ``Exposition.wait_scraped``).

    Raises:
        UsageError: the address cannot be listened on (port in use, unknown host, ...).
    """
    host, port = endpoint.host, endpoint.port
    exposition = Exposition()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exposition)
    metrics_app = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> _Body:
        version = exposition.version  # what this scrape will show at least
        body = metrics_app(environ, start_response)
        return _Body(body, lambda: exposition.served(version))

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        server_class = type("_Server", (ThreadingWSGIServer,), {"address_family": family})
        server: WSGIServer = make_server(host, port, app, server_class, _QuietHandler)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use (another wsload or exporter?)"
        raise UsageError(
            f"--metrics-port {port}: cannot serve metrics on {host}:{port}: {reason}"
        ) from None
    thread = threading.Thread(target=server.serve_forever, name="wsload-metrics", daemon=True)
    thread.start()
    where = f"[{host}]" if ":" in host else host
    exposition.url = f"http://{where}:{server.server_port}/metrics"
    try:
        yield exposition
    finally:
        server.shutdown()
        server.server_close()
        thread.join(_CLOSE_TIMEOUT)
