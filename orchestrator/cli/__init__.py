"""The `backfill` command line (see orchestrator.cli.main)."""

from orchestrator.cli.main import main

__all__ = ["main"]
