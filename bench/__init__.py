"""Benchmarks: measured, never asserted in tests. `make bench` or `python -m bench`."""
