"""The aiohttp application: the native REST API and the ops endpoints.

It parses requests, calls the use cases (orchestrator.usecases) and renders the result; the
rules live in the domain."""

from api.app import create_app
from api.probes import OpsProbes

__all__ = ["OpsProbes", "create_app"]
