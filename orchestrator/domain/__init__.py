"""The pure core: models, state machines, planners and retry policy.

Imports only the standard library and pydantic (the import contracts in pyproject.toml check)."""
