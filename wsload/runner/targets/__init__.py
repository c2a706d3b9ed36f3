"""The server a run is aimed at when wsload starts it, above the executors that load it.

``target.py``: ``url = "builtin"``, the built-in server in a child process
(``wsload.server.child`` owns that process); ``managed.py``: ``[target.process]``, the server
under test as a child process wsload owns; ``deploy.py``: that process's timed events fired
while the load runs, and their audit.
"""
