"""Agent Swarm vs one agent: 50 sub-agents × 4 steps at 300 ms model latency, against the scripted server.

    python benchmarks/swarm_bench.py [--agents 50] [--steps 4] [--latency 0.3] [--repeat 3] [--single-repeat 1]

Each sub-agent does what a small sub-task does, one tool call per step: createfile, bash (checks the
file), strreplace, submit. `--all-bash` makes every non-final step a bash command instead (process start-up
on a 2-core machine then shows in the numbers). The single agent makes the same model turns and tool calls
(a view in place of each submit) and then answers. Prints wall times (median), the speedup (target ≥ 25×)
and wall time / critical path (critical_steps × latency; target ≤ 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kimicode.agent import events as ev  # noqa: E402
from kimicode.agent.policy import ApprovalDecision  # noqa: E402
from kimicode.agent.runtime import build_runtime  # noqa: E402
from kimicode.config import Config  # noqa: E402
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall  # noqa: E402
from tests.swarm_script import is_sub_agent, steps_done, task_number  # noqa: E402


async def approve_all(request: ev.ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(True)


ALL_BASH = "--all-bash" in sys.argv
# Read before argparse runs: the responders are built in the server process from these globals.
CHUNK = int(next((a.split("=")[1] for a in sys.argv if a.startswith("--chunk=")), "6"))


def work_call(i: int, step: int) -> ToolCall:
    """Step ``step`` (0-based, not the last) of part ``i``."""
    if ALL_BASH:
        return ToolCall("bash", {"command": f"echo {i}-{step} >> out/{i}.txt"})
    kind = step % 3
    if kind == 0:
        return ToolCall("createfile", {"path": f"out/{i}.txt", "content": f"part {i}\nstep {step}\n", "overwrite": True})
    if kind == 1:
        return ToolCall("bash", {"command": f"grep -c step out/{i}.txt"})
    return ToolCall("strreplace", {"path": f"out/{i}.txt", "old_str": f"step {step - 2}", "new_str": f"step {step}"})


def swarm_responder(agents: int, steps: int, latency: float):
    def respond(request: RecordedRequest) -> Reply:
        done = steps_done(request)
        if is_sub_agent(request):
            i = task_number(request)
            if done < steps - 1:
                return Reply(delay=latency, chunk_size=CHUNK, tool_calls=[work_call(i, done)])
            return Reply(delay=latency, chunk_size=CHUNK, tool_calls=[ToolCall("submit", {"summary": f"part {i} done"})])
        if done == 0:
            plan = [{"role": "builder", "task": f"TASK-{i}: build part {i}"} for i in range(agents)]
            return Reply(delay=latency, chunk_size=CHUNK, tool_calls=[ToolCall("spawn_agents", {"agents": plan})])
        return Reply(delay=latency, chunk_size=CHUNK, content="all parts built")

    return respond


def single_responder(agents: int, steps: int, latency: float):
    def respond(request: RecordedRequest) -> Reply:
        done = steps_done(request)
        if done >= agents * steps:
            return Reply(delay=latency, chunk_size=CHUNK, content="all parts built")
        i, step = divmod(done, steps)
        if step < steps - 1:
            return Reply(delay=latency, chunk_size=CHUNK, tool_calls=[work_call(i, step)])
        return Reply(delay=latency, chunk_size=CHUNK, tool_calls=[ToolCall("view", {"path": f"out/{i}.txt"})])

    return respond


class RemoteServer:
    """The scripted server in its own process, as a real model server is: its work does not share
    kimicode's interpreter (GIL), so the timings are kimicode's own."""

    def __init__(self, kind: str, agents: int, steps: int, latency: float) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, kind, agents, steps, latency), daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def max_in_flight(self) -> int:
        self._conn.send("max_in_flight")
        return int(self._conn.recv())

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._conn.send("stop")
        self._process.join(timeout=10)


def _serve(conn, kind: str, agents: int, steps: int, latency: float) -> None:  # type: ignore[no-untyped-def]
    make = swarm_responder if kind == "swarm" else single_responder
    with FakeLLM() as fake:
        fake.responder = make(agents, steps, latency)
        conn.send(fake.base_url)
        while (command := conn.recv()) != "stop":
            conn.send(fake.max_in_flight if command == "max_in_flight" else None)


async def one_run(fake: FakeLLM | RemoteServer, mode: str, agents: int, steps: int) -> tuple[float, ev.RunResult]:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        (workspace / "out").mkdir(parents=True)
        config = Config(
            api_key="bench",
            base_url=fake.base_url,
            mode=mode,
            work_dir=workspace,
            home=Path(tmp) / "home",
            yolo=True,
            max_steps=agents * steps + 10,
            swarm_concurrency=agents,
            swarm_max_steps=steps + 2,
        )
        agent = build_runtime(config).agent(approve_all)
        started = time.perf_counter()
        result: ev.RunResult | None = None
        async for event in agent.run("build every part"):
            if isinstance(event, ev.Done):
                result = event.result
        wall = time.perf_counter() - started
        assert result is not None and result.subtype == "success", result
        written = sum(1 for _ in (workspace / "out").iterdir())
        assert written == agents, f"{written} parts written, expected {agents}"
        return wall, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--single-repeat", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=6, help="characters per streamed delta")
    parser.add_argument("--all-bash", action="store_true", help="every work step is a bash command")
    args = parser.parse_args()

    swarm_server = RemoteServer("swarm", args.agents, args.steps, args.latency)
    try:
        asyncio.run(one_run(swarm_server, "swarm", args.agents, args.steps))  # warm-up: imports, first run
        swarm_runs = [asyncio.run(one_run(swarm_server, "swarm", args.agents, args.steps)) for _ in range(args.repeat)]
        peak = swarm_server.max_in_flight()
    finally:
        swarm_server.close()
    single_server = RemoteServer("single", args.agents, args.steps, args.latency)
    try:
        single_runs = [
            asyncio.run(one_run(single_server, "agent", args.agents, args.steps)) for _ in range(args.single_repeat)
        ]
    finally:
        single_server.close()

    swarm_wall = statistics.median(wall for wall, _ in swarm_runs)
    result = swarm_runs[0][1]
    critical = result.extra["critical_steps"]
    critical_path = critical * args.latency
    steps_kind = "bash" if args.all_bash else "createfile/bash/strreplace"
    print(f"work: {args.agents} sub-agents x {args.steps} steps ({steps_kind} + submit), "
          f"model latency {args.latency * 1000:.0f} ms")
    print(f"swarm:  wall {swarm_wall:.2f} s (median of {args.repeat}: {', '.join(f'{w:.2f}' for w, _ in swarm_runs)})")
    print(f"        critical_steps {critical}, total_steps {result.extra['total_steps']}, "
          f"total_tool_calls {result.extra['total_tool_calls']}, peak requests in flight {peak}")
    if single_runs:
        single_wall = statistics.median(wall for wall, _ in single_runs)
        print(f"single: wall {single_wall:.2f} s (median of {args.single_repeat}), steps {single_runs[0][1].num_steps}")
        print(f"speedup single/swarm: {single_wall / swarm_wall:.1f}x (target >= 25x)")
    print(f"wall / critical path ({critical} x {args.latency:.2f} s = {critical_path:.2f} s): "
          f"{swarm_wall / critical_path:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
