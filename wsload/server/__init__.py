"""The built-in target server (``wsload serve`` and ``url = "builtin"``).

Modules: ``server`` (``BuiltinServer``, ``run_server_cli``: listening, shutdown storms, the CLI
helper), ``connection`` (one connection in one Trio task: upgrade, frames, close behaviours),
``upgrade`` (the server half of the opening handshake, without I/O) and ``stats``
(``ServerStats``: what the server saw). See docs/server.md.
"""
