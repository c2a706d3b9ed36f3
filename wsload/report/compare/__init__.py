"""Baseline vs current: the statistics that judge a change against the measured noise.

Pure functions of two summary.json dicts (and their histograms); the renderers (terminal,
markdown, JUnit, report.html) live one level up and only print what this package decided.

``engine.compare`` walks the scopes and returns a ``CompareResult``; ``figures`` builds each
scope's rows (latency percentiles, shares); ``tolerances`` says what counts as a change and
what is gated on; ``judge`` decides one figure from its evidence (``confidence`` intervals,
per-run spread, ``ranktest``); ``capacity`` adds a capacity search's row; ``rows`` is the
``Row`` every renderer reads.
"""
