"""How socket and TLS failures map to outcomes (shared by the driver and the reference engine).

``ECONNREFUSED`` is ``refused``; running out of descriptors, ports or buffers is
``local_resource`` (the load generator's limit, not the target's); any other connect failure,
DNS included, is ``connect_error``. A TLS failure is told apart from a plain EOF so that a
server closing mid-handshake is not blamed on certificates.
"""

from __future__ import annotations

import errno
import ssl

from wsload.core.outcomes import Outcome

__all__ = ["LOCAL_RESOURCE_ERRNOS", "connect_outcome", "os_error_in", "tls_cause"]

LOCAL_RESOURCE_ERRNOS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.EADDRINUSE}
)


def connect_outcome(exc: OSError) -> Outcome:
    """The outcome of a failed connect."""
    if exc.errno == errno.ECONNREFUSED:
        return Outcome.REFUSED
    if exc.errno in LOCAL_RESOURCE_ERRNOS:
        return Outcome.LOCAL_RESOURCE
    return Outcome.CONNECT_ERROR


def os_error_in(exc: BaseException | None) -> OSError | None:
    """The first OSError with an errno in ``exc``, its causes, or its exception groups.

    ``trio.open_tcp_stream`` wraps per-address failures in a group behind a plain OSError.
    """
    seen = 0
    while exc is not None and seen < 16:
        seen += 1
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        else:
            exc = exc.__cause__
    return None


def tls_cause(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a stream failure (not a plain TLS-level EOF), if any."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLEOFError):
        return cause
    return None
