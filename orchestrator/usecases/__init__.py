"""Use cases: what the API, the command consumer and the CLI ask of the system, one module
per aggregate. Each is thin: load through the stores (the protocols of ports.py), ask the domain
(orchestrator.domain) for the rules, store, and let the outbox publish."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.grants.checks import GrantChecker
from orchestrator.plugins.resources import Resources
from orchestrator.settings import Settings
from orchestrator.sources.pools import SourcePools
from orchestrator.usecases.backfills import Backfills
from orchestrator.usecases.checks import DataChecks
from orchestrator.usecases.commands import Commands
from orchestrator.usecases.drafts import Drafts
from orchestrator.usecases.ops import Ops
from orchestrator.usecases.ports import StoragePort
from orchestrator.usecases.preview import Preview
from orchestrator.usecases.runs import Runs
from orchestrator.usecases.targets import Targets


@dataclass(frozen=True)
class UseCases:
    targets: Targets
    backfills: Backfills
    drafts: Drafts
    runs: Runs
    preview: Preview
    commands: Commands
    ops: Ops
    # What the use cases check against and hand to sinks and handlers; the caller closes
    # the resources on its way out.
    grants: GrantChecker
    resources: Resources


def build_usecases(settings: Settings, storage: StoragePort, sources: SourcePools) -> UseCases:
    grants = GrantChecker(storage.grants)
    resources = Resources(settings=settings, sources=sources, grants=grants)
    checks = DataChecks(settings, sources, grants, resources)
    commands = Commands(settings, storage, checks)
    drafts = Drafts(settings, storage, checks)
    return UseCases(
        targets=Targets(storage, checks),
        backfills=Backfills(settings, storage, commands, drafts),
        drafts=drafts,
        runs=Runs(storage),
        preview=Preview(settings, storage, sources, checks),
        commands=commands,
        ops=Ops(settings, storage),
        grants=grants,
        resources=resources,
    )
