"""Where table backfills deliver rows. Each sink type registers in orchestrator.sinks.registry."""
