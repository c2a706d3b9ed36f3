"""Installing a folder's npm packages once (``npm ci`` from its committed package-lock.json),
or saying why not: the Node ``ws`` peer's ``tests/node`` and the shipped servers'
``scenarios/servers``.

Tests run in two pytest-xdist worker processes, and several test files (and the shipped runs,
whose servers would otherwise install on their first start) need the same folder: ``npm ci``
starts by deleting ``node_modules``, so one install must never run beside another or beside a
server already using the packages. An exclusive ``flock`` on the folder itself serializes them;
whoever comes second finds the packages installed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["SERVERS", "SERVER_PACKAGES", "npm_skip_reason"]

SERVERS = Path(__file__).resolve().parents[1] / "scenarios" / "servers"
"""The shipped scenarios' Node servers (deploy, Socket.IO, graphql-ws)."""
SERVER_PACKAGES = ("ws", "socket.io", "graphql-ws", "graphql")


def npm_skip_reason(folder: Path, packages: tuple[str, ...], what: str) -> str | None:
    """None when every one of ``packages`` is in ``folder/node_modules`` (running ``npm ci``
    there first if one is missing), else why not: the text a test skips with. ``what`` names
    what needs them, for that text."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        return f"node and npm are needed for {what} (not found on PATH)"
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
        if all((folder / "node_modules" / p / "package.json").exists() for p in packages):
            return None
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"npm ci in {folder} failed: {exc}"
        if done.returncode != 0:
            return f"npm ci in {folder} failed: {done.stderr.strip()[-300:]}"
        return None
    finally:
        os.close(fd)
