"""Time from launching the interactive kimicode to a prompt that accepts input (target ≤ 0.5 s).

Spawns the real CLI in a pty N times (default 7, at least 3) after one warm-up launch and waits for the
bottom toolbar, which prompt-toolkit draws once the prompt is ready. Prints the median with min–max and a
verdict against the target.

    python benchmarks/repl_startup.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import check_runs, machine_line, stats, target_line  # noqa: E402
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
    runs = check_runs(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
    with tempfile.TemporaryDirectory() as tmp:
        home, workspace = Path(tmp) / "home", Path(tmp) / "ws"
        home.mkdir()
        workspace.mkdir()
        one_launch(home, workspace)  # warm the file cache and .pyc files
        times = [one_launch(home, workspace) for _ in range(runs)]
    launch = stats(times)
    print(f"launch → input-ready prompt: {launch.show(1000, 0, 'ms')}")
    print(target_line("launch → prompt (median)", launch.median * 1000, TARGET_S * 1000, "ms", digits=0))
    print(machine_line())

if __name__ == "__main__":
    main()
