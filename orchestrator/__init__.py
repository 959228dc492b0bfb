"""Backfill orchestrator: table and date-range backfills over Postgres and RabbitMQ."""
