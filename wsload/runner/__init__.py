"""Turning a scenario into load and a result: the Trio loop, where it runs, and the modes.

Imports go one way, downwards (``tests/core/test_architecture.py`` checks it)::

    execute.py          options checked, seed fixed, mode and executor chosen (the only module
       │                that knows every mode and every executor)
       ├──▶ run.py      mode: one load, one result          ┐
       ├──▶ search.py   mode: levels, climb then bisect     │ modes never import each other;
       │               (search_levels.py: pure, verdicts)   │ each runs inside frame.py's
       └──▶ merge.py    mode: segments' directories → one   ┘ RunFrame
    workers.py, cluster.py   Executors: shares in processes / Dask tasks ──▶ executor.py
    executor.py         Executor protocol, Local, SplitResults (the one merge of shares)
    result_files.py     summary.json + totals.json (+ segments/), for run, workers and merge
    segment_run.py      one segment's load anywhere; SegmentResult and its wire form
    loop.py             the Trio load loop: MODELS table (arrival, concurrency, storm)
    lag.py, target.py   loop-lag monitor; the built-in server in a child process
    heap.py             the garbage collector's settings during a load (freeze, thresholds)
    frame.py            RunFrame: results dir, deferred signals, logs, live panel, exit code
    preflight.py        fd / port / TIME_WAIT limits vs the plan (pure)
    calibrate.py        ``wsload calibrate``: CPU per clean-close cycle

Below the runner, never importing it: ``wsload.plan`` (schedule and segments, pure),
``wsload.process`` (rlimit, signals, seed), ``wsload.engine``, ``wsload.metrics``,
``wsload.report``, ``wsload.server``, ``wsload.scenario``, ``wsload.core``.
"""
