"""Pure renderers from a run result to summary.json, interval logs, terminal tables."""
