"""The sans-IO protocol core: no Trio, no sockets; fed bytes and timestamps, returns data.

Modules: ``codes`` (RFC 6455 close codes), ``outcomes`` (the closed set of connection endings),
``record`` (the frozen per-connection record), ``browser`` (the ``CloseEvent`` a browser
would have fired for a record), plus the upgrade and close state machine used by
the engine's driver.
"""
