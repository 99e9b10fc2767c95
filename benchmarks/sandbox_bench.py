"""Time the sandbox adds to one `bash` call: `bash true` through the tool, sandboxed vs not.

Sandboxed calls run in the session-long sandbox (kimicode/security/sandbox_session.py: one bubblewrap
started once, its supervisor runs each command); a third series starts a bubblewrap per command
(KIMICODE_SANDBOX_PER_COMMAND=1), for comparison. After a warm-up, rounds of 10 calls of each series
alternate (CALLS in all per series, default 60: six rounds); each round's median is a sample. Prints medians
of the rounds with min–max and the added time against the project's target, at most 2 ms added per command
with the sandbox on, with a verdict (the exit status is 1 on a miss). Run: python benchmarks/sandbox_bench.py [CALLS]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import MIN_RUNS, machine_line, stats, target_line  # noqa: E402
from kimicode.security.sandbox import detect_sandbox  # noqa: E402
from kimicode.security.sandbox_session import DISABLE_VARIABLE  # noqa: E402
from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.bash import BashTool  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
TARGET_MS = 2.0


async def call_ms(ctx: ToolContext, calls: int, per_command: bool = False) -> list[float]:
    tool = BashTool()
    os.environ[DISABLE_VARIABLE] = "1" if per_command else ""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await tool.run({"command": "true"}, ctx)
        times.append((time.perf_counter() - start) * 1000)
        assert "[exit code: 0]" in result.text, result.text
    return times


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)  # protected paths to bind
        (workspace / ".env").write_text("X=1\n")
        start = time.perf_counter()
        sandbox = detect_sandbox("workspace-write", False, workspace, Path(tmp) / "home")
        detect_ms = (time.perf_counter() - start) * 1000
        if not sandbox.active:
            print(f"no sandbox here: {sandbox.unavailable}")
            return 1
        plain = ToolContext(workspace=workspace)
        boxed = ToolContext(workspace=workspace, sandbox=sandbox)
        asyncio.run(call_ms(plain, 3))  # warm up
        asyncio.run(call_ms(boxed, 3))
        asyncio.run(call_ms(boxed, 3, per_command=True))
        # Interleave the series so that machine load affects them alike.
        plain_ms: list[float] = []
        boxed_ms: list[float] = []
        fresh_ms: list[float] = []
        for _ in range(max(CALLS // 10, MIN_RUNS)):
            plain_ms.append(statistics.median(asyncio.run(call_ms(plain, 10))))
            boxed_ms.append(statistics.median(asyncio.run(call_ms(boxed, 10))))
            fresh_ms.append(statistics.median(asyncio.run(call_ms(boxed, 10, per_command=True))))
        wrap_start = time.perf_counter()
        for _ in range(100):
            sandbox.wrap(["bash", "-c", "true"], workspace)
        wrap_us = (time.perf_counter() - wrap_start) * 1e6 / 100
    plain_s, boxed_s = stats(plain_ms), stats(boxed_ms)
    added = stats([b - p for p, b in zip(plain_ms, boxed_ms, strict=True)])
    print(f"sandbox: {sandbox.describe()}; detection (once per process) {detect_ms:.1f} ms")
    print(f"bash true, unsandboxed: {plain_s.show(1.0, 2, 'ms')}")
    print(f"bash true, sandboxed:   {boxed_s.show(1.0, 2, 'ms')} (session-long sandbox)")
    print(f"bash true, a bubblewrap per command: {stats(fresh_ms).show(1.0, 2, 'ms')} (as before; for comparison)")
    print(f"added per call, within each round: {added.show(1.0, 2, 'ms')}; building the arguments: {wrap_us:.0f} µs")
    print(target_line("added per call (difference of the medians)", boxed_s.median - plain_s.median, TARGET_MS, "ms",
                      digits=2))
    print(machine_line())
    return 0 if boxed_s.median - plain_s.median <= TARGET_MS else 1

if __name__ == "__main__":
    sys.exit(main())
