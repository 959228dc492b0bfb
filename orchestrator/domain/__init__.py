"""The pure core: models, state machines, planners and retry policy.

Imports only the standard library and pydantic (tests/unit/test_import_contract.py checks)."""
