"""How long MCP start-up holds the agent back: three stdio servers, one of them slow to start.

Prints medians over several runs: time for McpManager.start() to return (what delays the prompt),
time until the two quick servers are ready, and time until the slow one is ready, plus the ratio
of start() to the slow server's start. Run: python benchmarks/mcp_startup.py [--runs N] [--delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kimicode.mcp.manager import McpManager  # noqa: E402
from tests.mcp_servers.fixtures import stdio_config  # noqa: E402


async def one_run(delay: float, log_dir: Path) -> tuple[float, float, float]:
    servers = [stdio_config("one"), stdio_config("two"), stdio_config("slow", "--start-delay", str(delay))]
    manager = McpManager(servers, log_dir=log_dir)
    began = time.perf_counter()
    manager.start()
    returned = time.perf_counter() - began
    while any(s.state == "starting" for s in manager.status() if s.name != "slow"):
        await asyncio.sleep(0.005)
    quick_ready = time.perf_counter() - began
    await manager.wait_ready(delay + 60)
    slow_ready = time.perf_counter() - began
    await manager.close()
    return returned, quick_ready, slow_ready


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay", type=float, default=2.0)
    options = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(options.runs):
            results.append(asyncio.run(one_run(options.delay, Path(tmp))))
    returned, quick, slow = (statistics.median(column) for column in zip(*results))
    print(f"runs={options.runs} slow server start delay={options.delay}s")
    print(f"start() returned after      {returned * 1000:8.2f} ms (median)")
    print(f"two quick servers ready at  {quick * 1000:8.2f} ms (median)")
    print(f"slow server ready at        {slow * 1000:8.2f} ms (median)")
    print(f"start() / slow-ready ratio  {returned / slow:.5f}")


if __name__ == "__main__":
    main()
