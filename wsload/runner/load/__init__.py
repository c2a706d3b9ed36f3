"""The Trio load loop and what runs inside it, below every executor and mode.

``loop.py`` (``run_load``: one nursery of connection tasks and one aggregator; ``MODELS``:
arrival, concurrency, storm) drives ``reconnect.py`` (a logical client that connects again,
with its pure backoff) and watches itself with ``lag.py`` (event-loop lag, schedule lateness,
saturation); ``heap.py`` keeps the garbage collector out of the measured window; ``abort.py``
judges ``abort = true`` thresholds on the live intervals and stops the run.
"""
