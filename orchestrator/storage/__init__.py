"""Storage: the only package that runs SQL against the orchestrator's own database."""
