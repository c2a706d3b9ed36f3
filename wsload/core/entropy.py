"""Random bytes for masks and handshake keys, drawn from ``os.urandom`` 4 KiB at a time.

A connection needs three small random values (the Sec-WebSocket-Key and one mask per frame
sent); one ``getrandom()`` syscall each costs more than the masking itself. The pool keeps the
same source (the OS CSPRNG, as RFC 6455 §5.3 asks of masks) and is refilled in a forked child,
so two processes never hand out the same bytes.
"""

from __future__ import annotations

import os

__all__ = ["random_bytes"]

_POOL_SIZE = 4096
_pool = b""
_pos = 0


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS CSPRNG (``n`` ≤ 4096)."""
    global _pool, _pos
    end = _pos + n
    if end > len(_pool):
        _pool, _pos, end = os.urandom(_POOL_SIZE), 0, n
    out = _pool[_pos:end]
    _pos = end
    return out


def _reset() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_reset)
