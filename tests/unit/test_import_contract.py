"""The domain package is the pure core: importing it must not pull in I/O libraries, so the
planner and state machines stay usable (and testable) without a network stack."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "orchestrator" / "domain"

IO_LIBRARIES = {"aiohttp", "asyncpg", "aio_pika", "aiormq", "structlog"}
ALLOWED_THIRD_PARTY = {"pydantic", "pydantic_core"}
DOMAIN_MODULES = [
    "orchestrator.domain.windows",
    "orchestrator.domain.retry",
    "orchestrator.domain.states",
    "orchestrator.domain.models",
    "orchestrator.domain.specs",
]


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY:
        return True
    return module in {"orchestrator.errors", "orchestrator.domain"} or module.startswith(
        "orchestrator.domain."
    )


def _imports(path: Path, root: Path = ROOT) -> list[str]:
    """Every module `path` imports, with relative imports resolved and `from pkg import name`
    counted as pkg.name (it may be a submodule)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module == "orchestrator" or (node.level and not node.module):
                found.extend(f"{module}.{alias.name}" for alias in node.names)
            else:
                found.append(module)
    return found


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
    assert set(DOMAIN_MODULES) <= loaded
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & IO_LIBRARIES
    ours = {name for name in loaded if name.split(".")[0] == "orchestrator"}
    assert {name for name in ours if not _allowed(name) and name != "orchestrator"} == set()


def _domain_files() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_domain_files_are_found() -> None:
    names = {p.name for p in _domain_files()}
    assert {"windows.py", "retry.py", "states.py", "models.py", "specs.py"} <= names


@pytest.mark.parametrize("path", _domain_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_imports_only_stdlib_pydantic_and_itself(path: Path) -> None:
    bad = [module for module in _imports(path) if not _allowed(module)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("import asyncio", True),
        ("from datetime import date", True),
        ("from pydantic import BaseModel", True),
        ("from orchestrator.errors import InvalidTransition", True),
        ("from orchestrator import errors", True),
        ("from . import states", True),
        ("from .states import BackfillState", True),
        ("import aiohttp", False),
        ("from orchestrator.storage import repository", False),
        ("from orchestrator import service", False),
        ("from .. import service", False),
        ("import typing_extensions", False),
    ],
)
def test_the_checker_itself(tmp_path: Path, source: str, allowed: bool) -> None:
    # Laid out like a real domain module, so relative imports resolve the same way.
    probe = tmp_path / "orchestrator" / "domain" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source + "\n")
    assert all(_allowed(m) for m in _imports(probe, tmp_path)) is allowed
