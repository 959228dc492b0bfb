"""Consumers and loops: planner, executor, dispatcher, outbox relay, reaper, shutdown."""
