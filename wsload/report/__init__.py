"""Pure renderers from a run result to summary.json, interval logs, terminal tables.

``summary`` builds the versioned summary dict, ``thresholds`` judges it, ``terminal`` renders it
(and the live panel) with rich, ``hlog`` formats the HdrHistogram interval log. ``compare/`` is
the statistics of a baseline comparison, which the renderers here print. ``files`` is the
one module here that touches paths: atomic writes and user-only results directories.
docs/results.md documents every field.
"""
