"""The commands that turn a scenario into a result, on top of the rest of the runner.

``execute.py`` (``wsload run``/``search``) checks the options, fixes the seed and picks the
mode and the executor: ``run.py`` (one load, one result) or ``search.py`` (levels, climb then
bisect; ``search_levels.py`` decides, pure). ``repeat.py`` (``run --repeat N``) is N
``execute_run`` merged, ``merge.py`` (``wsload merge``) segments' directories made one result;
each works inside ``frame.py``'s ``RunFrame``. ``calibrate.py`` is ``wsload calibrate``;
``preflight.py`` checks the plan against the file and port limits (pure).
"""
