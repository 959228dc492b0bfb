"""The resources a process hands every sink and handler, built once by its context."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.domain.grants import DataNeed, SourceGrant
from orchestrator.plugins.peers import Peers
from orchestrator.settings import Settings
from orchestrator.sources.pools import SourcePools


class GrantCheck(Protocol):
    """The grant check a run repeats before it touches a source. A port, because the checker
    (orchestrator.grants.checks) reads the plugin registries and so sits above the plugins."""

    async def check(self, team_id: int, needs: Iterable[DataNeed]) -> dict[str, SourceGrant]:
        """The team's grants on the sources `needs` name; NotGranted if one is outside."""
        ...


@dataclass(frozen=True)
class Resources:
    """What sinks and handlers may use, shared by the whole process. `peers` holds
    connections to destinations, opened on first use; `close()` closes them."""

    settings: Settings
    sources: SourcePools
    grants: GrantCheck  # what each team may do with the sources
    peers: Peers = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "peers", Peers(self.settings))

    async def close(self) -> None:
        await self.peers.close()
