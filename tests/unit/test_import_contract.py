"""The import contracts in pyproject.toml ([tool.importlinter], run by `make lint`) keep the
layers and the pure domain from the source. What they cannot see is what importing really
loads (a module imported by name at runtime, a dependency's own imports): this test imports
every domain module in a fresh interpreter and looks at sys.modules. And the picture of the
layers in docs/architecture.md is drawn from the contract, so it must be redrawn with it."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import orchestrator.domain
from tools.layers_diagram import REGENERATE, read_contract, render

ROOT = Path(__file__).resolve().parents[2]

IO_LIBRARIES = {"aiohttp", "asyncpg", "aio_pika", "aiormq", "structlog", "prometheus_client"}
DOMAIN_MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(orchestrator.domain.__path__, "orchestrator.domain.")
)


def test_importing_the_domain_loads_no_io_library() -> None:
    code = (
        f"import {', '.join(DOMAIN_MODULES)}; "
        "import sys, json; print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert {"orchestrator.domain.states", "orchestrator.domain.windows"} <= loaded
    assert {name.split(".")[0] for name in loaded} & IO_LIBRARIES == set()
    ours = {name for name in loaded if name.split(".")[0] == "orchestrator"}
    assert ours - {"orchestrator", "orchestrator.errors"} == {
        name for name in ours if name.startswith("orchestrator.domain")
    }


def test_the_committed_layer_diagram_is_drawn_from_the_contract() -> None:
    committed = (ROOT / "docs" / "architecture.svg").read_text()
    assert committed == render(*read_contract()), (
        f"docs/architecture.svg does not match the layers contract; redraw it: {REGENERATE}"
    )


def test_the_diagram_reads_every_kind_of_layer() -> None:
    layers, ignored = read_contract()
    by_first = {layer.modules[0]: layer for layer in layers}
    assert by_first["api"].modules == ("api", "workers")
    assert by_first["api"].independent
    uses = next(layer for layer in layers if "orchestrator.usecases" in layer.modules)
    assert not uses.independent
    assert not any(uses.optional)
    assert layers[-1].modules == ("orchestrator.domain",)
    assert ignored == []  # no import is let through the layers
