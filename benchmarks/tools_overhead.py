"""Time the SWE tools' own overhead, printed with ratios.

One warm-up round, then RUNS rounds (default 5); each round takes one sample of every measure (a sample is
the median of a batch of calls), so the bare subprocess and the bash tool run under the same load. Prints
medians of the rounds with min–max. No target is set for these.

Run: python benchmarks/tools_overhead.py [RUNS]
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

from benchmarks.harness import check_runs, interleaved_async, machine_line  # noqa: E402
from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.bash import BashTool  # noqa: E402
from kimicode.tools.strreplace import StrReplaceTool  # noqa: E402
from kimicode.tools.view import ViewTool  # noqa: E402

RUNS = check_runs(int(sys.argv[1]) if len(sys.argv) > 1 else 5)


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

        got = await interleaved_async({
            "raw": lambda: median_ms(raw_true, 10),
            "tool": lambda: median_ms(lambda: bash.run({"command": "true"}, ctx), 10),
            "huge": lambda: median_ms(lambda: bash.run({"command": "yes | head -c 50000000"}, ctx), 1),
            "viewed": lambda: median_ms(lambda: view.run({"path": "big.py"}, ctx), 10),
            "replaced": lambda: median_ms(replace_once, 10),
        }, RUNS)
        raw, tool = got["raw"].median, got["tool"].median
        print(f"bash -c true, bare subprocess     : {got['raw'].show(1.0, 2, 'ms')}")
        print(f"bash tool 'true'                  : {got['tool'].show(1.0, 2, 'ms')}  "
              f"(overhead {tool - raw:+.2f} ms, x{tool / raw:.2f})")
        print(f"bash tool, 50 MB of output        : {got['huge'].show(1.0, 1, 'ms')}")
        print(f"view of a 10,000-line file        : {got['viewed'].show(1.0, 2, 'ms')}")
        print(f"strreplace in a 10,000-line file  : {got['replaced'].show(1.0, 2, 'ms')}  "
              "(read, match, atomic write + fsync)")
    print(machine_line())

if __name__ == "__main__":
    asyncio.run(main())
