"""The client engine: the Trio driver that owns each connection's socket.

``driver.run_connection(plan, ctx)`` makes one connection (connect, TLS, upgrade, session, close
behaviour) in one task and returns its ``ConnectionRecord``; ``context`` holds the per-run
``DriverContext`` and ``ConnectionPlan``; ``link``, ``session`` and ``behaviours`` are its parts;
``reference.run_connection_reference`` is the trio-websocket cross-check engine. docs/engine.md.
"""
