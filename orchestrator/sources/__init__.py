"""Named source databases: the tables that backfills read, and where sinks and handlers write."""
