"""The built-in target server (``wsload serve`` and ``url = "builtin"``).

Modules: ``server`` (``BuiltinServer``, ``run_server_cli``: listening, shutdown storms, the CLI
helper), ``connection`` (one connection in one Trio task: reads, writes through ``RawIO``,
timers), ``policy`` (what a connection does about each event, told the time: no I/O),
``phases`` (a connection's phases as a transition table), ``app`` (``app = "pubsub"``),
``upgrade`` (the server half of the opening handshake, without I/O), ``stats``
(``ServerStats``: what the server saw), ``child`` (``ServerChild``: one server in a child
process, started, waited for, commanded and reaped over a pipe: the runner's built-in target
and ``multi`` use it) and ``multi`` (``wsload serve --processes N`` on one SO_REUSEPORT port).
See docs/server.md.
"""
