"""The import contracts in pyproject.toml ([tool.importlinter], run by `make lint`) keep the
layers and the pure domain from the source. What they cannot see is what importing really
loads (a module imported by name at runtime, a dependency's own imports): this test imports
every domain module in a fresh interpreter and looks at sys.modules."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import orchestrator.domain

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
