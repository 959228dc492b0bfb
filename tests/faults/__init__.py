"""Fault tests: kill, freeze and stop workers, cut connections, deliver messages twice, and
make sinks and handlers fail; then prove with one checker (tests/faults/checker.py) that
nothing was lost, doubled or left stuck.

Tools for these tests:
- checker.py: the end-of-test check of a backfill against its source and destination;
- processes.py: real `backfill worker` subprocesses (start, signal, freeze, logs, teardown);
- proxy.py: a TCP proxy whose connections a test can cut, refuse or stall;
- scenario.py: source and destination tables, audit and run-history triggers, targets."""
