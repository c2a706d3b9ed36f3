"""Build: compile the modules of a connection's cycle with mypyc; pure Python when it cannot.

``pip install [-e] .`` compiles :data:`COMPILED` (the modules of a connection's cycle,
``mypy --strict`` clean) into C extensions beside their sources when a C compiler
and the Python headers are there. Nothing here may fail an install: no compiler, mypyc
refusing the code, or a compiler error prints one warning and leaves a pure-Python install
(``wsload --version`` says which). ``WSLOAD_PURE=1`` at build time skips compiling; at run
time it makes an installed build use the ``.py`` sources (``wsload/_compiled.py``).

mypyc runs only where ``build_ext`` builds: pip calls this file three times per install, and
the two that only write metadata skip it (:data:`METADATA_ONLY`). After a successful build
``wsload/_mypyc_manifest.json`` lists each compiled module and the SHA-256 of the source it was
compiled from: a module edited since is never run compiled (``wsload/_compiled.py`` falls back
to the sources until the next install).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

COMPILED = (
    "wsload/core/browser.py",
    "wsload/core/closing.py",
    "wsload/core/codes.py",
    "wsload/core/entropy.py",
    "wsload/core/faults.py",
    "wsload/core/frames.py",
    "wsload/core/handshake.py",
    "wsload/core/kinds.py",
    "wsload/core/outcomes.py",
    "wsload/core/protocol.py",
    "wsload/core/record.py",
    "wsload/engine/behaviours.py",
    "wsload/engine/context.py",
    "wsload/engine/driver.py",
    "wsload/engine/link.py",
    "wsload/engine/poller.py",
    "wsload/engine/rawstream.py",
    "wsload/engine/session.py",
    "wsload/engine/wireclock.py",
    "wsload/metrics/collector.py",
    "wsload/metrics/counts.py",
    "wsload/metrics/histograms.py",
    "wsload/metrics/samples.py",
    "wsload/plan/schedule.py",
    "wsload/plan/segment.py",
    "wsload/runner/load/lag.py",
    "wsload/runner/load/loop.py",
)
"""The sources mypyc compiles, as one group (they call each other natively): the sans-IO core,
the per-cycle protocol work (protocol object, frame codec, close tracker, record); the
recording of each finished connection (the collector's one pass over a record: its counters,
samples and histograms; the lag monitor's start lag); the runner's load loop and the plan it
draws from; and the engine's per-connection I/O path (driver, its per-run context, session,
close behaviours, link, raw socket reads and the run's poller): once its reads parked in the
poller instead of Trio's cancel scopes, the engine's own Python was the largest interpreted
part of a cycle, and
compiling it measured ≈ 18 % less CPU per cycle (docs/performance.md, "One wait per read, no
cancel scope"), for ≈ 50 s more CPU per build (81 s against 31 s of ``setup.py build_ext``:
gcc on the group's larger C file). mypyc writes the group as one C file per module
(``multi_file``) and :class:`BuildExt` compiles them on every core: a fresh install took
≈ 165 s with the group as one file (CI 582 s in all) and ≈ 95 s with a file per module (CI 509
s, the same suite); one file let gcc inline across modules, ≈ 3 % less CPU per cycle (per-run median
of 5 interleaved runs, ≈ 9 % less user time), which CI's 10-minute budget cannot afford."""

GROUP = "wsload._mypyc"
"""The group's shared library: ``wsload/_mypyc__mypyc.*.so``, inside the package, so an
editable install finds it beside the sources."""

MANIFEST = "_mypyc_manifest.json"
HERE = Path(__file__).resolve().parent


def _warn(why: str) -> None:
    print(f"wsload: not compiled, installing pure Python ({why})", file=sys.stderr)


METADATA_ONLY = frozenset({"egg_info", "dist_info", "sdist"})
"""Commands that finalize ``build_ext`` only to list its sources (setuptools' file list) and
build nothing: pip's ``get_requires`` and ``prepare_metadata`` runs of this file."""


@functools.cache
def _mypyc_extensions() -> list[Extension]:
    """mypyc's extensions for :data:`COMPILED` (type-checks and writes the C sources), or
    none when it cannot (a warning says why); once per process (the editable build finalizes
    ``build_ext`` twice: for its file list, then to run it), and never in a process that only
    writes metadata: mypy's pass over the group takes 5-11 s, four times per install before."""
    if os.environ.get("WSLOAD_PURE", "") not in ("", "0"):
        _warn("WSLOAD_PURE is set")
        return []
    try:
        from mypyc.build import mypycify  # a build requirement (pyproject.toml)

        extensions = list(
            mypycify(
                list(COMPILED),
                group_name=GROUP,
                opt_level="3",
                debug_level="0",
                multi_file=True,
            )
        )
        for ext in extensions:  # the group's headers are written beside its package path
            ext.include_dirs.append(os.path.join("build", *GROUP.split(".")[:-1]))
        return extensions
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error: still install
        _warn(f"mypyc: {type(exc).__name__}: {exc}")
        return []


class BuildExt(build_ext):
    """``build_ext`` that compiles :data:`COMPILED` with mypyc, or nothing when it cannot."""

    def finalize_options(self) -> None:
        # before setuptools prepares the extensions (it does so for the placeholder below)
        commands = set(self.distribution.commands)
        if not commands or not commands <= METADATA_ONLY:
            self.distribution.ext_modules = _mypyc_extensions()
        super().finalize_options()
        self.parallel = os.cpu_count() or 1

    def build_extensions(self) -> None:
        """Compile each extension's C files in parallel too: mypyc writes one C file per
        module (``multi_file``) into the group's one extension, which setuptools would compile
        one file after the other (its ``parallel`` is per extension)."""
        compiler = self.compiler
        one_by_one = compiler.compile

        def compile_parallel(sources, *args, **kwargs):  # type: ignore[no-untyped-def]
            with ThreadPoolExecutor(self.parallel) as pool:
                done = pool.map(lambda source: one_by_one([source], *args, **kwargs), sources)
                return [obj for objs in done for obj in objs]

        compiler.compile = compile_parallel
        try:
            super().build_extensions()
        finally:
            compiler.compile = one_by_one

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers, a compiler error
            _warn(f"{type(exc).__name__}: {exc}")
            self.extensions = []  # nothing built: nothing to install
            return
        target = Path(self.get_ext_fullpath(GROUP + "__mypyc")).parent
        if self.inplace:  # an editable install: a module no longer compiled must not shadow
            built = {Path(self.get_ext_fullpath(ext.name)).resolve() for ext in self.extensions}
            for old in (HERE / "wsload").rglob("*.so"):
                if old.resolve() not in built:
                    old.unlink()
        manifest = {
            path[: -len(".py")].replace("/", "."): hashlib.sha256(
                (HERE / path).read_bytes()
            ).hexdigest()
            for path in COMPILED
        }
        (target / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


# A placeholder, so that setuptools builds a platform wheel and runs build_ext at all;
# BuildExt.finalize_options replaces it with mypyc's extensions.
setup(
    ext_modules=[Extension(GROUP + "__mypyc", sources=[])],
    cmdclass={"build_ext": BuildExt},
)
