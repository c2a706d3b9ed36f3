"""Installing a Debian package a test needs (Chromium, Prometheus), or saying why not.

Only as root, only where ``apt-get`` exists, bounded in time (``apt-get update`` and the install
share one deadline; the dpkg lock is waited for a minute, as another install may hold it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

__all__ = ["apt_install_skip_reason"]


def apt_install_skip_reason(package: str, binary: str, timeout: float) -> str | None:
    """None when ``binary`` is executable (installing ``package`` first if possible), else why
    not: the text a test skips with."""
    if os.access(binary, os.X_OK):
        return None
    apt = shutil.which("apt-get")
    if apt is None:
        return f"{package} is not installed and apt-get is not available"
    if os.geteuid() != 0:
        return f"{package} is not installed and installing it needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + timeout
    apt_get = [apt, "-o", "DPkg::Lock::Timeout=60"]
    for args in (
        [*apt_get, "update"],
        [*apt_get, "install", "-y", "--no-install-recommends", package],
    ):
        try:
            done = subprocess.run(
                args,
                env=env,
                capture_output=True,
                text=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"installing {package} timed out ({' '.join(args[3:])})"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            return f"{' '.join(args)} failed: {tail}"
    return None if os.access(binary, os.X_OK) else f"apt-get installed no {binary}"
