"""The client engine: the Trio driver that owns each connection's socket."""
