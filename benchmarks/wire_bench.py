"""The model request's connection layer: N streamed requests in a row through one ChatClient against the
scripted model server, through kimicode's transport (llm/wire.py) and through httpx's own
(``KIMICODE_HTTP_TRANSPORT=httpx``), interleaved.

    python benchmarks/wire_bench.py [--runs 3] [--requests 200] [--history-kb 24]

Each sample is one client making ``--requests`` requests one after the other (a reply of a few streamed
chunks each, the request carrying ``--history-kb`` KB of history, about what a 100-step run sends), after one
request thrown away (the SDK's client made, the first connection opened). Measured per request: the CPU time
of the thread the client's event loop runs in (``time.thread_time``: the scripted server answers from its own
threads, so its work is left out) and the wall time. No target is set; the figure is the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import interleaved, machine_line  # noqa: E402
from tests.fake_llm import FakeLLM, Reply  # noqa: E402


def measure(fake: FakeLLM, transport: str, requests: int, history: str, walls: list[float]) -> float:
    """CPU ms per request of one client's ``requests`` requests (wall ms appended to ``walls``)."""
    from kimicode.config import Config
    from kimicode.llm.client import ChatClient
    from kimicode.llm.profiles import profile_for
    from kimicode.llm.wire import ENV

    os.environ[ENV] = transport
    config = Config(base_url=fake.base_url, api_key="k", model="kimi-k2.5", max_retries=0)
    messages = [{"role": "user", "content": history}]
    fake.script(*[Reply(content="done, nothing else to do") for _ in range(requests + 1)])

    async def run() -> tuple[float, float]:
        client = ChatClient(config, profile_for(config.model))
        try:
            await client.complete(messages, [], thinking=False)  # (the client made, a connection open)
            cpu, wall = time.thread_time(), time.perf_counter()
            for _ in range(requests):
                await client.complete(messages, [], thinking=False)
            return time.thread_time() - cpu, time.perf_counter() - wall
        finally:
            await client.aclose()

    cpu, wall = asyncio.run(run())
    walls.append(wall * 1000 / requests)
    return cpu * 1000 / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--history-kb", type=int, default=24)
    args = parser.parse_args()
    history = "x" * (args.history_kb * 1024)
    walls: dict[str, list[float]] = {"wire": [], "httpx": []}
    with FakeLLM() as fake:
        results = interleaved(
            {name: (lambda name=name: measure(fake, name, args.requests, history, walls[name])) for name in walls},
            args.runs,
        )
    print(f"{args.requests} streamed requests in a row, {args.history_kb} KB of history each, one client:")
    for name, cpu in results.items():
        label = "kimicode's transport" if name == "wire" else "httpx's own transport"
        wall = sorted(walls[name][1:])  # (the warm-up round's sample is not kept)
        print(f"  {label}: CPU {cpu.show(digits=3, unit='ms')} per request; wall median {wall[len(wall) // 2]:.3f} ms")
    saved = results["httpx"].median - results["wire"].median
    print(f"CPU saved per request: {saved:.3f} ms (no target set: the comparison is the figure)")
    print(machine_line())


if __name__ == "__main__":
    main()
