"""Where the load of one run executes: this process, worker processes, or a Dask cluster.

``executor.py`` holds the ``Executor`` protocol, ``Local`` (this process) and ``SplitResults``
(the one merge of shares); ``workers.py`` (``--workers N``: spawned processes) and
``cluster.py`` (``--cluster``: Dask tasks) cut the plan into segments, and each segment runs
through ``segment_run.py`` (one segment anywhere → ``SegmentResult``, and its wire form).
"""
