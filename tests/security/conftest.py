"""A second team, as an attacker holding one of its ordinary write keys would be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.domain.keys import Scope
from tests.helpers import api, target_body


@dataclass(frozen=True)
class Team:
    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def intruder(ctx: Context) -> Team:
    """Team 2 with a read+write key: no admin scope, and no grant until a test gives one."""
    team_id, _ = await ctx.access.repo.create_team("second")
    token, _ = await ctx.access.create_key(team_id, {Scope.READ, Scope.WRITE}, name="second")
    return Team(team_id, token)


async def team_target(
    client: Any, team: Team, name: str, kind: str = "table", **fields: Any
) -> Any:
    """POST /v1/targets with the team's key, as tests.helpers.make_target does with team 1's."""
    body = target_body(name, kind, **fields)
    return await api(client, "POST", "/v1/targets", 201, headers=team.headers, json=body)
