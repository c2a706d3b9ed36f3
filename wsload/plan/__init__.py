"""The pure plan of a run: when each connection starts and how it closes, whole or in shares.

``schedule.py`` turns a ``LoadConfig`` into arrival offsets, concurrency and rate curves and
the seeded close mix; ``segment.py`` cuts that plan into the disjoint shares that worker
processes, Dask tasks or other machines run. No I/O, no clock: the runner executes the plan,
the live panel and the pre-flight checks read it.
"""
