"""Agent Swarm vs one agent: 50 sub-agents × 4 steps at 300 ms model latency, against the scripted server.

    python benchmarks/swarm_bench.py [--runs 3] [--agents 50] [--steps 4] [--latency 0.3] [--serial-parts 10]
                                     [--server-limits 50,10]
    python benchmarks/swarm_bench.py --full      # the single agent does all 50 parts (about 4 min)

Each sub-agent does what a small sub-task does, one tool call per step: createfile, bash (checks the
file), strreplace, submit. `--all-bash` makes every non-final step a bash command instead (process start-up
on a 2-core machine then shows in the numbers). The single agent makes the same model turns and tool calls
(a view in place of each submit) and then answers.

The swarm runs against one scripted server per `--server-limits` entry: each answers that many chat
requests at once and a 429 (with the server's short Retry-After) to any beyond; 0 means no limit. The
default pair is an endpoint that takes the whole swarm (50) and one that allows 10, where the adaptive
limit must back off with no sub-agent failing (the 429s are counted). Every run starts from a fresh limit
(the configured floor), as a new process would. The ×serial and critical-path targets are held against a
server that takes the whole swarm; a narrower one bounds the wall by its width, so there the wall is set
against that bound and the verdict is that no sub-agent failed.

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
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Stats, check_runs, machine_line, stats, target_line  # noqa: E402
from kimicode.agent import events as ev  # noqa: E402
from kimicode.agent.policy import ApprovalDecision  # noqa: E402
from kimicode.agent.runtime import build_runtime  # noqa: E402
from kimicode.config import Config  # noqa: E402
from kimicode.llm.limiter import forget_limiters  # noqa: E402
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

    def __init__(self, kind: str, agents: int, steps: int, latency: float, limit: int = 0) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, kind, agents, steps, latency, limit), daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def counter(self, name: str) -> int:
        """One of the server's counters: "max_in_flight" (since the last reset) or "throttled" (429s sent)."""
        self._conn.send(name)
        return int(self._conn.recv())

    def reset_peak(self) -> None:
        self._conn.send("reset_peak")
        self._conn.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._conn.send("stop")
        self._process.join(timeout=10)


def _serve(conn: Connection, kind: str, agents: int, steps: int, latency: float, limit: int) -> None:
    make = swarm_responder if kind == "swarm" else single_responder
    with FakeLLM() as fake:
        fake.responder = make(agents, steps, latency)
        fake.concurrency_limit = limit or None
        conn.send(fake.base_url)
        while (command := conn.recv()) != "stop":
            if command == "reset_peak":
                fake.max_in_flight = 0
            conn.send({"max_in_flight": fake.max_in_flight, "throttled": fake.throttled}.get(command))


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
        forget_limiters()  # start from the floor, as a new process does
        runtime = build_runtime(config)
        agent = runtime.agent(approve_all)
        started = time.perf_counter()
        result: ev.RunResult | None = None
        try:
            async for event in agent.run("build every part"):
                if isinstance(event, ev.Done):
                    result = event.result
            wall = time.perf_counter() - started
        finally:
            await runtime.aclose()  # its HTTP connections close inside this loop, not after it is gone
        assert result is not None and result.subtype == "success", result
        written = sum(1 for _ in (workspace / "out").iterdir())
        assert written == agents, f"{written} parts written, expected {agents}"
        return wall, result


SPEEDUP_TARGET = 25.0
CRITICAL_PATH_TARGET = 1.3


@dataclass
class SwarmFigures:
    """One server's swarm runs: (wall, result) per kept round, the server's peak in flight and its 429s."""

    limit: int
    runs: list[tuple[float, ev.RunResult]] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    throttled: list[int] = field(default_factory=list)


def parse_limits(text: str) -> list[int]:
    try:
        limits = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--server-limits takes numbers separated by commas (got {text!r})") from None
    if not limits or min(limits) < 0:
        raise SystemExit(f"--server-limits takes numbers of 0 or more (got {text!r})")
    return limits


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
    parser.add_argument("--server-limits", default="50,10",
                        help="chat requests each swarm server answers at once, 429 beyond (0: no limit)")
    args = parser.parse_args()
    check_runs(args.runs)
    limits = parse_limits(args.server_limits)
    parts = args.agents if args.full else min(args.serial_parts, args.agents)

    swarm_servers = [RemoteServer("swarm", args.agents, args.steps, args.latency, limit) for limit in limits]
    single_server = RemoteServer("single", parts, args.steps, args.latency)
    figures = [SwarmFigures(limit) for limit in limits]
    single_runs: list[tuple[float, ev.RunResult]] = []
    try:
        for round_number in range(1 + args.runs):  # round 0 warms up: imports, .pyc, the file cache
            for server, figure in zip(swarm_servers, figures, strict=True):
                server.reset_peak()
                throttled_before = server.counter("throttled")
                swarm = asyncio.run(one_run(server, "swarm", args.agents, args.steps))
                if round_number:
                    figure.runs.append(swarm)
                    figure.peaks.append(server.counter("max_in_flight"))
                    figure.throttled.append(server.counter("throttled") - throttled_before)
            single = asyncio.run(one_run(single_server, "agent", parts, args.steps))
            if round_number:
                single_runs.append(single)
    finally:
        for server in [*swarm_servers, single_server]:
            server.close()

    # The single agent's wall per model turn, times the turns the whole work takes (every part, then the answer).
    whole_turns = args.agents * args.steps + 1
    serial = stats([wall / run.num_steps * whole_turns for wall, run in single_runs])
    steps_kind = "bash" if args.all_bash else "createfile/bash/strreplace"
    defaults = Config(api_key="bench")
    print(f"work: {args.agents} sub-agents x {args.steps} steps ({steps_kind} + submit), "
          f"model latency {args.latency * 1000:.0f} ms; swarm concurrency {defaults.swarm_concurrency} (the default), "
          f"sandbox {defaults.sandbox} (the default)")
    single_wall = stats([wall for wall, _ in single_runs])
    print(f"single: {parts} of {args.agents} parts, {single_runs[0][1].num_steps} turns, "
          f"wall {single_wall.show(unit='s', digits=2)}")
    how = "measured" if parts == args.agents else f"estimated: per-turn wall x {whole_turns} turns"
    print(f"serial, all {args.agents} parts ({how}): {serial.show(unit='s', digits=1)}")
    for figure in figures:
        report_swarm(figure, serial, args.latency, args.agents)
    print(machine_line())


def report_swarm(figure: SwarmFigures, serial: Stats, latency: float, agents: int) -> None:
    """The targets (× serial, wall / critical path) hold where the server takes the whole swarm at once; a
    narrower server bounds the wall by its own width instead, so there the wall is set against that bound
    and the verdict is that no sub-agent failed (every run asserts it) with few 429s."""
    swarm_wall = stats([wall for wall, _ in figure.runs])
    result = figure.runs[0][1]
    critical = result.extra["critical_steps"]
    critical_path = critical * latency
    narrow = 0 < figure.limit < agents
    speedup = stats([s / w for s, w in zip(serial.samples, swarm_wall.samples, strict=True)])
    on_path = stats([w / critical_path for w in swarm_wall.samples])
    allows = f"{figure.limit} at once, 429 beyond" if figure.limit else "no limit"
    print(f"swarm against a server that allows {allows} (no sub-agent failed):")
    print(f"  wall {swarm_wall.show(unit='s', digits=2)}")
    print(f"  critical_steps {critical}, total_steps {result.extra['total_steps']}, "
          f"total_tool_calls {result.extra['total_tool_calls']}")
    print(f"  peak requests in flight {stats([float(p) for p in figure.peaks]).show(digits=0)}, "
          f"429s {stats([float(t) for t in figure.throttled]).show(digits=0)}")
    print(f"  speedup serial/swarm: {speedup.show(unit='x', digits=1)}")
    print(f"  wall / critical path ({critical} x {latency:.2f} s = {critical_path:.2f} s): {on_path.show(digits=2)}")
    if narrow:
        # the orchestrator's turns one after another, the sub-agents' turns `limit` at a time
        sub_turns = result.extra["total_steps"] - result.num_steps
        bound = result.num_steps * latency + sub_turns * latency / figure.limit
        width_bound = stats([w / bound for w in swarm_wall.samples])
        print(f"  wall / the server's width bound ({result.num_steps} x {latency:.2f} s + {sub_turns} x {latency:.2f} s "
              f"/ {figure.limit} = {bound:.2f} s): {width_bound.show(digits=2)}")
        print(f"  no sub-agent failed, {stats([float(t) for t in figure.throttled]).median:.0f} 429s per run "
              f"(median) for {result.extra['total_steps']} turns: PASS")
        return
    print("  " + target_line("speedup (median)", speedup.median, SPEEDUP_TARGET, "x", higher_is_better=True))
    print("  " + target_line("wall / critical path (median)", on_path.median, CRITICAL_PATH_TARGET, "x", digits=2))


if __name__ == "__main__":
    main()
