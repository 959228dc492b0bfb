"""Running the `backfill` command as a user does: a real process, configured by its
environment, judged by its exit code, stdout and stderr."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def assert_one_error_line(self, *needles: str) -> str:
        """Exactly one line on stderr, no traceback, naming each of `needles`."""
        assert self.code != 0, self
        assert "Traceback" not in self.stderr, self.stderr
        assert len(self.error_lines) == 1, self.stderr
        line = self.error_lines[0]
        assert line.startswith("backfill: error: "), line
        for needle in needles:
            assert needle in line, (needle, line)
        return line


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    env.update(variables)
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "200"  # tables and summaries on one line each, whatever the terminal
    return env


async def backfill(
    *args: str, env: dict[str, str], stdin: bytes | None = None, within: float = 120
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orchestrator.cli", *args,
        cwd=ROOT, env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
