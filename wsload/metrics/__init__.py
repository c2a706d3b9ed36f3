"""HDR histograms and counters built from connection records; exact merges.

``histograms`` fixes the one histogram layout (µs, 1 µs … 1 h, 3 significant digits), its wire
encoding and its statistics; ``collector.Collector`` is the runner's aggregator (per behaviour
and in total, interval snapshots, ``merge``, ``to_wire``/``from_wire``); ``result.RunResult`` is
what a finished run hands to ``wsload.report``.
"""
