"""Build: compile wsload's pure hot modules with mypyc; everything else stays Python.

The modules in ``COMPILED`` are sans-IO, ``mypy --strict`` clean and on every connection's hot
path. Set ``WSLOAD_PURE=1`` when building to skip compiling (a pure-Python install); the same
variable at run time makes an installed build use the ``.py`` sources (``wsload/_compiled.py``).
After compiling, the build writes ``wsload/_mypyc_manifest.json`` (module -> SHA-256 of the
source compiled), so that a compiled module whose source has changed since is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "wsload/core/closing.py",
    "wsload/core/codes.py",
    "wsload/core/entropy.py",
    "wsload/core/frames.py",
    "wsload/core/handshake.py",
    "wsload/core/outcomes.py",
    "wsload/core/record.py",
]
GROUP = "wsload._mypyc"  # the shared library becomes wsload/_mypyc__mypyc.*.so, inside the package
HERE = Path(__file__).parent


def _extensions() -> list[object]:
    if os.environ.get("WSLOAD_PURE"):
        return []
    from mypyc.build import mypycify  # a build requirement (pyproject.toml)

    return list(mypycify(COMPILED, group_name=GROUP, opt_level="3", debug_level="0"))


class BuildExt(build_ext):
    """``build_ext`` that also records which sources the extensions were compiled from."""

    def run(self) -> None:
        super().run()
        if not self.extensions:
            return
        package = Path(self.get_ext_fullpath(GROUP + "__mypyc")).parent
        manifest = {
            path[: -len(".py")].replace("/", "."): hashlib.sha256(
                (HERE / path).read_bytes()
            ).hexdigest()
            for path in COMPILED
        }
        (package / "_mypyc_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
