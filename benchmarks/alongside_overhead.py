"""What working alongside the agent costs per step: steering and stance checks, the todo list, the tool list,
bash with background tasks available, starting a background task, and a request through the port bridge.

Every measure compared with another runs in the same rounds: one warm-up round, then `--runs` rounds, each
running every configuration once (a micro-measure's sample is the median of a batch of calls). Prints the
median of the rounds with min–max, and ratios where there is a baseline. No target is set for these; the
per-step figures are what the ≤ 2 ms per-step budget (benchmarks/foundation_bench.py) has to hold.

    python benchmarks/alongside_overhead.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Stats, check_runs, interleaved, interleaved_async, machine_line  # noqa: E402
from kimicode.agent.runtime import build_runtime  # noqa: E402
from kimicode.config import Config  # noqa: E402
from kimicode.security.sandbox import detect_sandbox  # noqa: E402
from kimicode.tools.background import TaskManager  # noqa: E402
from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.bash import BashTool  # noqa: E402
from kimicode.tools.todo import TodoList, TodoTool  # noqa: E402


def median_us(action: Callable[[], object], runs: int = 5_000) -> float:
    """One sample: the median of a batch of ``runs`` calls, in µs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def median_ms(action: Callable[[], Awaitable[object]], runs: int) -> float:
    """One sample: the median of a batch of ``runs`` awaited calls, in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def show(value: Stats, digits: int = 2) -> str:
    return value.show(1.0, digits)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        response.read()


def per_step(ws: Path, runs: int) -> None:
    config = Config(api_key="k", work_dir=ws, home=ws / ".home", sandbox="off")
    agent = build_runtime(config).agent()
    sink: list[object] = []

    def one_steer() -> None:
        agent.steer("use port 9000")
        agent._before_request(sink.append)

    items = [{"content": f"step {n} of the work", "status": "pending"} for n in range(10)]
    ctx = ToolContext(workspace=ws, todo=TodoList())
    todo = TodoTool()
    got = interleaved({
        "idle": lambda: median_us(lambda: agent._before_request(sink.append)),
        "steer": lambda: median_us(one_steer, 1000),
        "tools": lambda: median_us(agent.current_tools),
        "todo_same": lambda: median_us(lambda: agent._emit_todo(sink.append)),
        # A todo call beyond an empty asyncio.run, both in the same sample.
        "todo_call": lambda: median_us(lambda: asyncio.run(todo.run({"items": items}, ctx)), 1000)
        - median_us(lambda: asyncio.run(asyncio.sleep(0)), 1000),
    }, runs)
    print("µs, median of the rounds (min–max):")
    print(f"per step, nothing sent into the turn   : {show(got['idle'])}  (stance and steering check)")
    print(f"per step, one message sent into it     : {show(got['steer'])}  (appended to the history, Steered)")
    print(f"per step, the tool list (offered())    : {show(got['tools'])}  ({len(agent.current_tools())} tools)")
    print(f"per tool call, todo list unchanged     : {show(got['todo_same'])}")
    print(f"todo call, 10 items                    : {show(got['todo_call'])}  (beyond an empty asyncio.run)")


async def commands(ws: Path, runs: int) -> None:
    plain, tasks_bash = BashTool(), BashTool(background=True)
    ctx = ToolContext(workspace=ws)
    with_tasks = ToolContext(workspace=ws, tasks=TaskManager(ws / ".tasks"))
    got = await interleaved_async({
        "plain": lambda: median_ms(lambda: plain.run({"command": "true"}, ctx), 20),
        "tasks": lambda: median_ms(lambda: tasks_bash.run({"command": "true"}, with_tasks), 20),
        "background": lambda: median_ms(
            lambda: tasks_bash.run({"command": "true", "background": True}, with_tasks), 10
        ),
    }, runs)
    ratio = got["tasks"].median / got["plain"].median
    print("ms, median of the rounds (min–max), sandbox off:")
    print(f"bash 'true', SWE toolset               : {show(got['plain'])}")
    print(f"bash 'true', background tasks on       : {show(got['tasks'])}  (x{ratio:.2f}: registered as movable)")
    print(f"background 'true' (ends at once)       : {show(got['background'])}  (start, settle, result)")
    await with_tasks.tasks.close()  # type: ignore[union-attr]


async def one_server(ctx: ToolContext, gets: list[float]) -> float:
    """Start `python3 -m http.server` as a background task, GET it 20 times, stop it; returns the start time."""
    port = free_port()
    started = time.perf_counter()
    result = await BashTool(True).run({"command": f"exec python3 -m http.server {port}", "background": True}, ctx)
    start = time.perf_counter() - started
    assert f"127.0.0.1:{port}" in result.text, result.text
    for _ in range(20):
        t = time.perf_counter()
        await asyncio.to_thread(get, port)
        gets.append(time.perf_counter() - t)
    await ctx.tasks.stop(next(reversed(ctx.tasks.tasks)))  # type: ignore[union-attr]
    return start


async def servers(ws: Path, runs: int) -> None:
    sandbox = detect_sandbox("workspace-write", False, ws, ws / ".home")
    contexts = {"direct": ToolContext(workspace=ws, tasks=TaskManager(ws / ".tasks"))}
    if sandbox is not None and sandbox.active:
        contexts["bridge"] = ToolContext(workspace=ws, sandbox=sandbox, tasks=TaskManager(ws / ".tasks-sb"))
    else:
        print("(no bubblewrap here: the bridge is not measured)")
    gets: dict[str, list[float]] = {name: [] for name in contexts}
    starts = await interleaved_async(
        {name: functools.partial(one_server, contexts[name], gets[name]) for name in contexts}, runs
    )
    labels = {"direct": "unsandboxed, direct", "bridge": "sandboxed, via the bridge"}
    for name, ctx in contexts.items():
        await ctx.tasks.close()  # type: ignore[union-attr]
        kept = gets[name][20:]  # the warm-up round's requests are left out
        print(f"http.server started → listening, {labels[name]:<25}: {starts[name].show(1000, 1, 'ms')}")
        print(f"GET / of it, {labels[name]:<45}: median {statistics.median(kept) * 1000:.2f} ms "
              f"(min–max {min(kept) * 1000:.2f}–{max(kept) * 1000:.2f}, n={len(kept)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="kept rounds (after one warm-up round)")
    runs = check_runs(parser.parse_args().runs)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        per_step(ws, runs)
        asyncio.run(commands(ws, runs))
        asyncio.run(servers(ws, runs))
    print(machine_line())


if __name__ == "__main__":
    main()
