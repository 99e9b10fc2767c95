"""What hooks cost: per tool call (targets: at most 5 ms more than no hooks when none matches; dominated by
process start when some do) and at start-up (finding them when there are none: at most 10 ms).

A tool call is timed through the agent's real call path (kimicode.agent.calls: the hooks, the policy, the
tool) with a `view` of a small file, in three configurations taken in turns each round: no hooks, five
PreToolUse hooks that match another tool, five matching no-op PreToolUse hooks (`true`, run in parallel). A sample is the median of a batch of calls. Discovery is `load_hooks` for a workspace and
home without any hook file. Prints medians with min–max and verdicts against the targets.

    python benchmarks/hooks_overhead.py [RUNS]

Seen here (2 cores, shared, load 7): no hooks 0.48 ms per call; five not matching +0.02 ms; five matching
+16 ms (five `sh -c true` started at once); discovery with none 0.38 ms (the first, importing, 50-75 ms).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import check_runs, interleaved_async, machine_line, stats, target_line  # noqa: E402
from kimicode.agent.loop import Agent  # noqa: E402
from kimicode.config import Config  # noqa: E402
from kimicode.extensions.hooks import Hooks  # noqa: E402
from kimicode.extensions.hooks_config import HookConfig, HookSpec, load_hooks  # noqa: E402
from kimicode.llm.reply import ToolCallRequest  # noqa: E402
from kimicode.security.policy import Policy  # noqa: E402
from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.view import ViewTool  # noqa: E402

RUNS = check_runs(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
BATCH = 20
NONE_MATCHING_TARGET_MS = 5.0
DISCOVERY_TARGET_MS = 10.0


def agent(workspace: Path, home: Path, specs: list[HookSpec]) -> Agent:
    hooks = Hooks(HookConfig(specs, []), workspace, home) if specs else None
    return Agent(
        client=None,  # type: ignore[arg-type]  # the call path never asks the model
        tools={"view": ViewTool()},
        ctx=ToolContext(workspace=workspace),
        system_prompt="",
        policy=Policy(workspace=workspace, home=home),
        session_id="bench",
        hooks=hooks,
    )


def no_op(event: str, matcher: str) -> list[HookSpec]:
    return [HookSpec(event, matcher, "true", 60.0, "benchmark") for _ in range(5)]


async def per_call_ms(runner: Agent) -> float:
    call = ToolCallRequest("c1", "view", '{"path": "a.txt"}')
    times = []
    for _ in range(BATCH):
        start = time.perf_counter()
        [result] = await runner._calls.run([call], lambda event: None)
        times.append((time.perf_counter() - start) * 1000)
        assert not result.is_error, result.text
    return statistics.median(times)


def discovery_ms(workspace: Path, home: Path) -> float:
    config = Config(work_dir=workspace, home=home, trusted=True)
    start = time.perf_counter()
    found = load_hooks(config, user_home=home)
    elapsed = (time.perf_counter() - start) * 1000
    assert not found.hooks
    return elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workspace, home = Path(tmp) / "ws", Path(tmp) / "home"
        workspace.mkdir()
        home.mkdir()
        (workspace / "a.txt").write_text("hello\n" * 20)
        configs: dict[str, Callable[[], Awaitable[float]]] = {}
        for name, specs in {
            "no hooks": [],
            "5 not matching": no_op("PreToolUse", "WebFetch"),
            "5 matching no-op": no_op("PreToolUse", "Read"),
        }.items():
            runner = agent(workspace, home, specs)
            configs[name] = lambda runner=runner: per_call_ms(runner)  # type: ignore[misc]
        got = await interleaved_async(configs, RUNS)
        found = stats([discovery_ms(workspace, home) for _ in range(RUNS * 5)])
    base = got["no hooks"].median
    for name, figures in got.items():
        print(f"{name:>20}: per call {figures.show(digits=2, unit='ms')}, {figures.median - base:+.2f} ms")
    print(target_line("5 hooks, none matching: more per call", got["5 not matching"].median - base,
                      NONE_MATCHING_TARGET_MS, "ms", digits=2))
    print(f"{'discovery, none':>20}: {found.show(digits=2, unit='ms')}")
    print(target_line("discovery with no hooks", found.median, DISCOVERY_TARGET_MS, "ms", digits=2))
    print(machine_line())


if __name__ == "__main__":
    asyncio.run(main())
