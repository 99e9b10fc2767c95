"""Time from launching the interactive kimicode to a prompt that accepts input (target ≤ 0.5 s).

Spawns the real CLI in a pty N times (default 7) and waits for the bottom toolbar, which prompt-toolkit
draws once the prompt is ready. Prints the median and the spread.

    python benchmarks/repl_startup.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.replpty import Repl  # noqa: E402

TARGET_S = 0.5


def one_launch(home: Path, workspace: Path) -> float:
    started = time.perf_counter()
    repl = Repl(home, workspace, "http://127.0.0.1:9/v1")
    try:
        repl.wait_prompt()
        return time.perf_counter() - started
    finally:
        repl.close()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        home, workspace = Path(tmp) / "home", Path(tmp) / "ws"
        home.mkdir()
        workspace.mkdir()
        one_launch(home, workspace)  # warm the file cache and .pyc files
        times = [one_launch(home, workspace) for _ in range(runs)]
    median = statistics.median(times)
    print(f"launch → input-ready prompt: median {median * 1000:.0f} ms over {runs} runs "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); target {TARGET_S * 1000:.0f} ms, "
          f"ratio {median / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
