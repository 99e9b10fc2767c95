"""What turning file paths into OSC 8 links costs per line of REPL output.

Decorates typical output lines (answer prose without paths, prose naming files that exist and do not,
grep-style ``path:line:`` output, tool-call lines) in a workspace of 200 files, and compares with rendering
the same line through rich without links. Prints the median microseconds per line and the ratio.

    python benchmarks/link_decoration.py [ROUNDS]
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.text import Text  # noqa: E402

from kimicode.frontends.repl.links import FORMATS, Linker  # noqa: E402

LINES = [
    "The function returns early when the cache is warm, so the second call never reaches the network.",
    "I changed src/pkg/module_17.py:42 and tests/test_module_17.py so the edge case is covered, e.g. v1.2.",
    "src/pkg/module_3.py:118:    return compute(value)  # grep output",
    "● view src/pkg/module_5.py",
    "See docs/guide.md and src/pkg/missing_file.py for the rest; run `pytest -q` afterwards.",
    "",
]


def render(console: Console, text: Text) -> None:
    console.print(text, soft_wrap=True)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "src" / "pkg").mkdir(parents=True)
        (root / "tests").mkdir()
        (root / "docs").mkdir()
        for index in range(100):
            (root / "src" / "pkg" / f"module_{index}.py").write_text("x = 1\n")
            (root / "tests" / f"test_module_{index}.py").write_text("x = 1\n")
        (root / "docs" / "guide.md").write_text("# guide\n")
        console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system="truecolor")
        plain_times: list[float] = []
        linked_times: list[float] = []
        decorate_times: list[float] = []
        for line in LINES:  # warm-up: rich's and the linker's first calls, not timed
            render(console, Linker(root, FORMATS["vscode"]).decorate(Text(line)))
        for _ in range(rounds):  # plain and linked interleaved line by line, so load hits both alike
            linker = Linker(root, FORMATS["vscode"])  # a fresh cache: the first sight of each path pays the stat
            for line in LINES:
                started = time.perf_counter()
                render(console, Text(line))
                plain_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                text = linker.decorate(Text(line))
                decorate_times.append(time.perf_counter() - started)
                render(console, text)
                linked_times.append(time.perf_counter() - started)
                console.file.seek(0)
                console.file.truncate()
    plain = statistics.median(plain_times) * 1e6
    decorate = statistics.median(decorate_times) * 1e6
    linked = statistics.median(linked_times) * 1e6
    print(
        f"per line ({rounds} rounds × {len(LINES)} lines): decorate {decorate:.1f} µs median "
        f"(mean {statistics.fmean(decorate_times) * 1e6:.1f} µs); rich render without links {plain:.1f} µs, "
        f"with links {linked:.1f} µs; ratio {linked / plain:.2f}"
    )


if __name__ == "__main__":
    main()
