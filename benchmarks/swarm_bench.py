"""Agent Swarm vs one agent: 50 sub-agents × 4 steps at 300 ms model latency, against the scripted server.

    python benchmarks/swarm_bench.py [--runs 3] [--agents 50] [--steps 4] [--latency 0.3] [--serial-parts 10]
    python benchmarks/swarm_bench.py --full      # the single agent does all 50 parts (about 4 min)

Each sub-agent does what a small sub-task does, one tool call per step: createfile, bash (checks the
file), strreplace, submit. `--all-bash` makes every non-final step a bash command instead (process start-up
on a 2-core machine then shows in the numbers). The single agent makes the same model turns and tool calls
(a view in place of each submit) and then answers.

Settings are kimicode's defaults (swarm concurrency, sandbox, limits) except `yolo` (an unattended run
approves its own actions) and `max_steps` (the single agent needs more steps than the default allows).
By default the single agent does `--serial-parts` of the parts and its wall time is scaled per model turn
to the whole work (printed as an estimate); `--full` runs it on every part. One warm-up round, then
`--runs` rounds, each a swarm run and a single-agent run, interleaved. Prints medians with min–max, the
speedup over serial (target ≥ 25×) and the swarm's wall / critical path (critical_steps × latency;
target ≤ 1.3), each with a verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import check_runs, machine_line, stats, target_line  # noqa: E402
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


def _serve(conn: Connection, kind: str, agents: int, steps: int, latency: float) -> None:
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


SPEEDUP_TARGET = 25.0
CRITICAL_PATH_TARGET = 1.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="kept rounds (after one warm-up round)")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--serial-parts", type=int, default=10, help="parts the single agent does (scaled up)")
    parser.add_argument("--full", action="store_true", help="the single agent does every part")
    parser.add_argument("--chunk", type=int, default=6, help="characters per streamed delta")
    parser.add_argument("--all-bash", action="store_true", help="every work step is a bash command")
    args = parser.parse_args()
    check_runs(args.runs)
    parts = args.agents if args.full else min(args.serial_parts, args.agents)

    swarm_server = RemoteServer("swarm", args.agents, args.steps, args.latency)
    single_server = RemoteServer("single", parts, args.steps, args.latency)
    swarm_runs: list[tuple[float, ev.RunResult]] = []
    single_runs: list[tuple[float, ev.RunResult]] = []
    try:
        for round_number in range(1 + args.runs):  # round 0 warms up: imports, .pyc, the file cache
            swarm = asyncio.run(one_run(swarm_server, "swarm", args.agents, args.steps))
            single = asyncio.run(one_run(single_server, "agent", parts, args.steps))
            if round_number:
                swarm_runs.append(swarm)
                single_runs.append(single)
        peak = swarm_server.max_in_flight()
    finally:
        swarm_server.close()
        single_server.close()

    swarm_wall = stats([wall for wall, _ in swarm_runs])
    result = swarm_runs[0][1]
    critical = result.extra["critical_steps"]
    critical_path = critical * args.latency
    # The single agent's wall per model turn, times the turns the whole work takes (every part, then the answer).
    whole_turns = args.agents * args.steps + 1
    serial = stats([wall / run.num_steps * whole_turns for wall, run in single_runs])
    speedup = stats([s / w for s, w in zip(serial.samples, swarm_wall.samples, strict=True)])
    on_path = stats([w / critical_path for w in swarm_wall.samples])
    steps_kind = "bash" if args.all_bash else "createfile/bash/strreplace"
    concurrency = Config(api_key="bench").swarm_concurrency
    print(f"work: {args.agents} sub-agents x {args.steps} steps ({steps_kind} + submit), "
          f"model latency {args.latency * 1000:.0f} ms; swarm concurrency {concurrency} (the default), "
          f"sandbox {Config(api_key='bench').sandbox} (the default)")
    print(f"swarm:  wall {swarm_wall.show(unit='s', digits=2)}")
    print(f"        critical_steps {critical}, total_steps {result.extra['total_steps']}, "
          f"total_tool_calls {result.extra['total_tool_calls']}, peak requests in flight {peak}")
    single_wall = stats([wall for wall, _ in single_runs])
    print(f"single: {parts} of {args.agents} parts, {single_runs[0][1].num_steps} turns, "
          f"wall {single_wall.show(unit='s', digits=2)}")
    how = "measured" if parts == args.agents else f"estimated: per-turn wall x {whole_turns} turns"
    print(f"serial, all {args.agents} parts ({how}): {serial.show(unit='s', digits=1)}")
    print(f"speedup serial/swarm: {speedup.show(unit='x', digits=1)}")
    print(f"swarm wall / critical path ({critical} x {args.latency:.2f} s = {critical_path:.2f} s): "
          f"{on_path.show(digits=2)}")
    print(target_line("speedup (median)", speedup.median, SPEEDUP_TARGET, "x", higher_is_better=True))
    print(target_line("wall / critical path (median)", on_path.median, CRITICAL_PATH_TARGET, "x", digits=2))
    print(machine_line())


if __name__ == "__main__":
    main()
