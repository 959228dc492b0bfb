"""Benchmarks against the real services, each beside its reference in the same run.

    python -m bench                       every scenario, 3 repetitions; updates the docs
    python -m bench --quick               every scenario small, once (a CI smoke test)
    python -m bench --scenario NAME ...   some scenarios; their rows in the docs are replaced
    python -m bench --list                what there is

Full runs write bench/results/latest.json and regenerate docs/benchmarks.md (table, chart,
machine); quick runs write bench/results/quick.json only, since their figures are too small
to mean much."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from bench import report, session
from bench.machine import describe
from bench.runner import discover, run_scenario
from orchestrator import eventloop
from orchestrator.logs import configure_logging


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME", help="run only these")
    p.add_argument("--repeat", type=int, help="repetitions per scenario (default 3; quick 1)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    return p


async def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging("ERROR", json_output=True)
    scenarios = discover()
    if args.list:
        for s in scenarios.values():
            print(f"{s.name:<28} {s.summary} (target: {s.target})")
        return 0
    unknown = [n for n in args.scenario if n not in scenarios]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(scenarios)}")
        return 2
    chosen = [scenarios[n] for n in args.scenario] if args.scenario else list(scenarios.values())
    repetitions = args.repeat or (1 if args.quick else 3)
    fresh = []
    try:
        for s in chosen:
            print(f"== {s.name}: {s.summary}", flush=True)
            result = await run_scenario(s, quick=args.quick, repetitions=repetitions)
            fresh.append(result.as_dict())
            print(report.console_table([fresh[-1]]).splitlines()[-1], flush=True)
    finally:
        await session.close()
    machine = await describe()
    print()
    print(report.console_table(fresh))
    path = report.RESULTS / ("quick.json" if args.quick else "latest.json")
    results = report.merged(path, fresh) if args.scenario else fresh
    report.write_json(path, machine, results)
    if not args.quick and not args.no_docs:
        report.write_doc(machine, results, report.chart(results, report.CHART))
        print(f"\nwrote {path.relative_to(report.ROOT)} and docs/benchmarks.md")
    return 1 if any(r["error"] for r in fresh) else 0


async def _stoppable(argv: list[str] | None) -> int:
    # SIGTERM (a CI timeout, say) cancels the run, so the scratch databases and broker
    # namespace are still dropped on the way out.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await main(argv)


def run(argv: list[str] | None = None) -> None:
    # On the event loop every `backfill` process runs on (uvloop): the row scenarios run
    # their worker in this process, and a worker on asyncio's own loop is not the product.
    sys.exit(eventloop.run(_stoppable(argv)))


if __name__ == "__main__":
    run()
