"""How long MCP start-up holds the agent back: three stdio servers, one of them slow to start.

Prints medians over several runs: time for McpManager.start() to return (what delays the prompt),
time until the two quick servers are ready, and time until the slow one is ready, plus the ratio
of start() to the slow server's start. Then the same from the outside: the real `kimicode -p` process
against the scripted model server, time from launch to its first model request with no MCP servers
and with the three servers configured (the slow one must not delay it).
Run: python benchmarks/mcp_startup.py [--runs N] [--delay S]
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
from kimicode.mcp.store import save_servers  # noqa: E402
from tests.clirun import cli_env, write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM, Reply  # noqa: E402
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


def cli_first_request(delay: float, with_servers: bool, tmp: Path) -> tuple[float, float]:
    """Seconds from launching `kimicode -p` to its first model request, and to the process's exit."""
    import subprocess

    home = Path(tempfile.mkdtemp(dir=tmp))
    write_home_config(home, "")
    if with_servers:
        servers = [stdio_config("one"), stdio_config("two"), stdio_config("slow", "--start-delay", str(delay))]
        save_servers(home, servers)
    with FakeLLM() as fake:
        fake.script(Reply(content="ok"))
        began = time.time()
        proc = subprocess.run(
            [sys.executable, "-m", "kimicode", "-p", "hi"],
            cwd=home,
            env=cli_env(home, fake.base_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        ended = time.time()
        if proc.returncode != 0 or not fake.requests:
            raise SystemExit(f"kimicode failed: {proc.stderr}")
        return fake.requests[0].time - began, ended - began


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

    with tempfile.TemporaryDirectory() as tmp:
        bare = [cli_first_request(options.delay, False, Path(tmp)) for _ in range(options.runs)]
        with_mcp = [cli_first_request(options.delay, True, Path(tmp)) for _ in range(options.runs)]
    bare_first, bare_exit = (statistics.median(column) for column in zip(*bare))
    mcp_first, mcp_exit = (statistics.median(column) for column in zip(*with_mcp))
    print("kimicode -p, launch to first model request (median):")
    print(f"  no MCP servers              {bare_first * 1000:8.1f} ms (exit at {bare_exit * 1000:.0f} ms)")
    print(f"  3 servers, one slow ({options.delay:g}s)   {mcp_first * 1000:8.1f} ms (exit at {mcp_exit * 1000:.0f} ms)")
    print(f"  ratio with/without          {mcp_first / bare_first:.2f}")
    print(f"  first request / slow delay  {mcp_first / options.delay:.3f}")


if __name__ == "__main__":
    main()
