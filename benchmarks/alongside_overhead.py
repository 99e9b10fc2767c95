"""What working alongside the agent costs per step: steering and stance checks, the todo list, the tool list,
bash with background tasks available, starting a background task, and a request through the port bridge.

Medians over many runs, printed with ratios where there is a baseline.

    python benchmarks/alongside_overhead.py
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kimicode.agent.runtime import build_runtime  # noqa: E402
from kimicode.config import Config  # noqa: E402
from kimicode.security.sandbox import detect_sandbox  # noqa: E402
from kimicode.tools.background import TaskManager  # noqa: E402
from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.bash import BashTool  # noqa: E402
from kimicode.tools.todo import TodoList, TodoTool  # noqa: E402


def median_us(action: Callable[[], object], runs: int = 20_000) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def median_ms(action: Callable[[], Awaitable[object]], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        response.read()


def per_step(ws: Path) -> None:
    config = Config(api_key="k", work_dir=ws, home=ws / ".home", sandbox="off")
    agent = build_runtime(config).agent()
    sink: list[object] = []
    idle = median_us(lambda: agent._before_request(sink.append))
    tools = median_us(agent.current_tools)
    todo_same = median_us(lambda: agent._emit_todo(sink.append))

    def one_steer() -> None:
        agent.steer("use port 9000")
        agent._before_request(sink.append)

    steer = median_us(one_steer, 2000)
    print(f"per step, nothing sent into the turn   : {idle:7.2f} µs  (stance and steering check)")
    print(f"per step, one message sent into it     : {steer:7.2f} µs  (appended to the history, Steered)")
    print(f"per step, the tool list (offered())    : {tools:7.2f} µs  ({len(agent.current_tools())} tools)")
    print(f"per tool call, todo list unchanged     : {todo_same:7.2f} µs")
    items = [{"content": f"step {n} of the work", "status": "pending"} for n in range(10)]
    ctx = ToolContext(workspace=ws, todo=TodoList())
    todo = TodoTool()
    run_todo = median_us(lambda: asyncio.run(todo.run({"items": items}, ctx)), 2000)
    bare = median_us(lambda: asyncio.run(asyncio.sleep(0)), 2000)
    print(f"todo call, 10 items                    : {run_todo - bare:7.2f} µs  (beyond an empty asyncio.run)")


async def commands(ws: Path) -> None:
    plain, tasks_bash = BashTool(), BashTool(background=True)
    ctx = ToolContext(workspace=ws)
    with_tasks = ToolContext(workspace=ws, tasks=TaskManager(ws / ".tasks"))
    before = await median_ms(lambda: plain.run({"command": "true"}, ctx), 60)
    after = await median_ms(lambda: tasks_bash.run({"command": "true"}, with_tasks), 60)
    print(f"bash 'true', SWE toolset               : {before:7.2f} ms")
    print(f"bash 'true', background tasks on       : {after:7.2f} ms  (x{after / before:.2f}: registered as movable)")
    quick = await median_ms(lambda: tasks_bash.run({"command": "true", "background": True}, with_tasks), 20)
    print(f"background 'true' (ends at once)       : {quick:7.2f} ms  (start, settle, result)")
    await with_tasks.tasks.close()  # type: ignore[union-attr]


async def servers(ws: Path, sandboxed: bool) -> None:
    sandbox = detect_sandbox("workspace-write", False, ws, ws / ".home") if sandboxed else None
    if sandboxed and (sandbox is None or not sandbox.active):
        print("(no bubblewrap here: the bridge is not measured)")
        return
    ctx = ToolContext(workspace=ws, sandbox=sandbox, tasks=TaskManager(ws / ".tasks"))
    label = "sandboxed, via the bridge" if sandboxed else "unsandboxed, direct"
    starts, gets = [], []
    for _ in range(5):
        port = free_port()
        started = time.perf_counter()
        result = await BashTool(True).run({"command": f"exec python3 -m http.server {port}", "background": True}, ctx)
        starts.append(time.perf_counter() - started)
        assert f"127.0.0.1:{port}" in result.text, result.text
        for _ in range(20):
            t = time.perf_counter()
            await asyncio.to_thread(get, port)
            gets.append(time.perf_counter() - t)
        await ctx.tasks.stop(next(reversed(ctx.tasks.tasks)))  # type: ignore[union-attr]
    await ctx.tasks.close()  # type: ignore[union-attr]
    print(f"http.server started → listening, {label:<25}: {statistics.median(starts) * 1000:7.1f} ms")
    print(f"GET / of it, {label:<45}: {statistics.median(gets) * 1000:7.2f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        per_step(ws)
        asyncio.run(commands(ws))
        asyncio.run(servers(ws, sandboxed=False))
        asyncio.run(servers(ws, sandboxed=True))


if __name__ == "__main__":
    main()
