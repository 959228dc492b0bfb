"""An open-loop HTTP load generator: `rate` GETs a second for `seconds`, each sent at its
scheduled time whether or not earlier ones have answered, latency measured from that time
(so a stall is not hidden by waiting for it). Runs pinned to one CPU, apart from the server.

    python -m bench.loadgen URL RATE SECONDS TOKEN CPU   -> prints JSON {p50, p99, ...}
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp


async def main(url: str, rate: float, seconds: float, token: str) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Authorization": f"Bearer {token}"}
    ) as http:

        async def one(at: float) -> None:
            nonlocal errors
            try:
                async with http.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - at)

        for _ in range(50):  # warm the connections up
            await one(time.perf_counter())
        latencies.clear()
        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] * 1000

    return {
        "requests": len(ordered),
        "errors": errors,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        # Until the last answer: past saturation this is longer than the schedule, and the
        # answers per second of it are what the server sustained.
        "seconds": elapsed,
    }


if __name__ == "__main__":
    url, rate, seconds, token, cpu = sys.argv[1:6]
    os.sched_setaffinity(0, {int(cpu)})
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(url, float(rate), float(seconds), token))))
