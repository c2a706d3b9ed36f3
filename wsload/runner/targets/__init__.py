"""The server a run is aimed at when wsload starts it: the built-in one or a managed process."""
