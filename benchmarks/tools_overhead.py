"""Time the SWE tools' own overhead: medians over several runs, printed with ratios.

Run: python benchmarks/tools_overhead.py
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

from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.bash import BashTool  # noqa: E402
from kimicode.tools.strreplace import StrReplaceTool  # noqa: E402
from kimicode.tools.view import ViewTool  # noqa: E402


async def median_ms(action: Callable[[], Awaitable[object]], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        ctx = ToolContext(workspace=ws)
        big = ws / "big.py"
        big.write_text("".join(f"value_{n} = {n}\n" for n in range(10_000)))
        bash, view, edit = BashTool(), ViewTool(), StrReplaceTool()
        counter = iter(range(10_000))

        async def raw_true() -> None:
            proc = await asyncio.create_subprocess_exec("bash", "-c", "true")
            await proc.wait()

        async def replace_once() -> None:
            n = next(counter)
            await edit.run({"path": "big.py", "old_str": f"value_{n} = {n}\n", "new_str": f"v{n} = 0\n"}, ctx)

        raw = await median_ms(raw_true, 50)
        tool = await median_ms(lambda: bash.run({"command": "true"}, ctx), 50)
        huge = await median_ms(lambda: bash.run({"command": "yes | head -c 50000000"}, ctx), 5)
        viewed = await median_ms(lambda: view.run({"path": "big.py"}, ctx), 50)
        replaced = await median_ms(replace_once, 50)
        print(f"bash -c true, bare subprocess     : {raw:7.2f} ms")
        print(f"bash tool 'true'                  : {tool:7.2f} ms  (overhead {tool - raw:+.2f} ms, x{tool / raw:.2f})")
        print(f"bash tool, 50 MB of output        : {huge:7.2f} ms")
        print(f"view of a 10,000-line file        : {viewed:7.2f} ms")
        print(f"strreplace in a 10,000-line file  : {replaced:7.2f} ms  (read, match, atomic write + fsync)")


if __name__ == "__main__":
    asyncio.run(main())
