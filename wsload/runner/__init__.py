"""Turning a scenario into load and a result: the Trio loop, where it runs, and the modes.

Four subpackages and the four modules they share; imports go one way, downwards
(``RUNNER_RANKS`` in ``tests/core/test_architecture.py`` checks it)::

    modes/        what a command does: execute.py (``run``/``search``: options checked, seed
       │          fixed, mode and executor chosen: the only module that knows them all), run.py,
       │          search.py (+ search_levels.py, pure), merge.py, repeat.py (N execute_runs
       │          merged), calibrate.py, preflight.py (fd / port limits vs the plan, pure)
       ▼
    options.py    RunOptions: where and how the load runs, checked in one place
       ▼
    targets/      the server a run is aimed at when wsload starts it: target.py
       │          (``url = "builtin"``), managed.py ([target.process]), deploy.py (its events)
       ▼
    executors/    where the load executes: executor.py (Executor, Local, SplitResults),
       │          workers.py (--workers), cluster.py (--cluster), segment_run.py (one segment
       │          anywhere → SegmentResult)
       ▼
    load/         the Trio load loop: loop.py (MODELS: arrival, concurrency, storm), reconnect.py,
                  lag.py (loop-lag monitor), heap.py (GC during a load), abort.py (abort = true)

    frame.py      RunFrame around every mode: results dir, deferred signals, logs, live panel,
                  exit code; endpoint.py its ``/metrics`` server; result_files.py summary.json,
                  totals.json and segments/ for run, workers and merge.

Below the runner, never importing it: ``wsload.plan`` (schedule and segments, pure),
``wsload.process`` (rlimit, signals, seed), ``wsload.engine``, ``wsload.metrics``,
``wsload.report``, ``wsload.server`` (whose ``child.py`` runs the built-in server in a child
process for ``targets/target.py``), ``wsload.scenario``, ``wsload.core``.
"""
