"""The commands that turn a scenario into a result: run, repeat, search, merge, calibrate."""
