"""Typed keys for application and request storage, in one place."""

from __future__ import annotations

from aiohttp import web

from api.probes import OpsProbes
from orchestrator.access import AccessService
from orchestrator.domain.keys import Principal
from orchestrator.settings import Settings
from orchestrator.usecases import UseCases

SETTINGS_KEY = web.AppKey("settings", Settings)
USECASES_KEY = web.AppKey("usecases", UseCases)
ACCESS_KEY = web.AppKey("access", AccessService)
# A Protocol is not a concrete class, so the type goes in as a parameter rather than an argument.
PROBES_KEY = web.AppKey[OpsProbes]("probes")

REQUEST_ID_KEY = web.RequestKey("request_id", str)
PRINCIPAL_KEY = web.RequestKey("principal", Principal)
# (limit, remaining) of the key's rate limit, once the request has been counted.
RATE_LIMIT_KEY = web.RequestKey[tuple[int, int]]("rate_limit")
