"""HDR histograms and counters built from connection records; exact merges.

``histograms`` fixes the one histogram layout (µs, 1 µs … 1 h, 3 significant digits), its wire
encoding and its statistics; ``samples`` turns a record into latency samples; ``counts`` holds
the counters (one table: the fields of ``Counts``); ``collector.Collector`` is the runner's
aggregator (per behaviour and in total, interval snapshots, ``merge``, ``to_wire``/
``from_wire``); ``snapshots`` is the interval snapshot and its merge across processes;
``failures`` groups why connections failed; ``result.RunResult`` (holding the load side, a
``SegmentResult``) is what a finished run hands to ``wsload.report``.
"""
