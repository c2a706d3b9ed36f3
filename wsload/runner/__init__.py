"""Turning a scenario into load: the pure schedule and the Trio runner."""
