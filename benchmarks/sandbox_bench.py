"""Time the sandbox adds to one `bash` call: the median of `bash true` through the tool, sandboxed vs not.

Target: at most 10 ms added per call. Run: python benchmarks/sandbox_bench.py [CALLS]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kimicode.security.sandbox import detect_sandbox  # noqa: E402
from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.bash import BashTool  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
TARGET_MS = 10.0


async def call_ms(ctx: ToolContext, calls: int) -> list[float]:
    tool = BashTool()
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
        # Interleave the two series so that machine load affects both alike.
        plain_ms: list[float] = []
        boxed_ms: list[float] = []
        for _ in range(CALLS // 10):
            plain_ms += asyncio.run(call_ms(plain, 10))
            boxed_ms += asyncio.run(call_ms(boxed, 10))
        wrap_start = time.perf_counter()
        for _ in range(100):
            sandbox.wrap(["bash", "-c", "true"], workspace)
        wrap_us = (time.perf_counter() - wrap_start) * 1e6 / 100
    p, b = statistics.median(plain_ms), statistics.median(boxed_ms)
    print(f"sandbox: {sandbox.describe()}; detection (once per process) {detect_ms:.1f} ms")
    print(f"bash true, median of {len(plain_ms)} calls: unsandboxed {p:.2f} ms, sandboxed {b:.2f} ms")
    print(f"added per call: {b - p:.2f} ms (target <= {TARGET_MS:.0f} ms); building the arguments: {wrap_us:.0f} us")
    return 0 if b - p <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
