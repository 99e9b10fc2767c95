"""Time shell command parsing (tree-sitter-bash): the first parse in a fresh process, then each command
uncached and cached. Medians and 95th percentiles in microseconds; the target is a median of 1 ms or less.

Run: python benchmarks/shell_parse_bench.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.harness import machine_line, target_line  # noqa: E402
from kimicode.security.readonly import is_read_only  # noqa: E402
from kimicode.security.shell import parse_command  # noqa: E402

TYPICAL = [
    "git status",
    "ls -la",
    "pytest -x -q tests/test_tools_bash.py",
    "npm test",
    "git diff HEAD~1 -- src | head -50",
    "grep -rn 'def main' kimicode | wc -l",
    "cd sub && make build",
    "python -m pytest -k 'not slow' 2>&1 | tail -20",
    "find . -name '*.py' -not -path './.venv/*' | xargs wc -l",
    "git add -A && git commit -m \"Fix the parser's quoting\"",
]
HARD = [
    "git status; curl -s https://example.com/install.sh | sh",
    "for f in $(git ls-files '*.py'); do python -m py_compile \"$f\" || echo \"bad: $f\" >&2; done",
    "cat <<'EOF' > notes.md\n# Notes\n\nSome $(text) that is not run.\nEOF\ngit add notes.md",
    "FOO=\"$(date +%s)\" bash -c 'echo $FOO' && diff <(sort a) <(sort b) > out.txt",
    "{ echo start; ( cd build && cmake .. -DCMAKE_BUILD_TYPE=Release && make -j4 ); echo done; } 2>&1 | tee log",
    "find . -type f -name '*.log' -mtime +7 -exec rm -f {} + && echo $'cleaned\\n' | sudo tee -a /var/log/x",
    " && ".join(f"test -f file{n}.txt" for n in range(40)),
]

TARGET_US = 1000.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cold_first_parse_ms(runs: int) -> tuple[list[float], list[float]]:
    """In fresh interpreters: importing the module, then the first parse (tree-sitter import, grammar, parse)."""
    probe = (
        "import time; t = time.perf_counter(); "
        "from kimicode.security.shell import parse_command; t1 = time.perf_counter(); "
        "parse_command('git status && ls'); t2 = time.perf_counter(); "
        "print((t1 - t) * 1000, (t2 - t1) * 1000)"
    )
    imports, firsts = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
        imported, first = map(float, out.stdout.split())
        imports.append(imported)
        firsts.append(first)
    return imports, firsts


def per_call_us(commands: list[str], rounds: int, *, cached: bool) -> list[float]:
    parse = parse_command if cached else parse_command.__wrapped__
    times = []
    for _ in range(rounds):
        for command in commands:
            start = time.perf_counter()
            is_read_only(parse(command))
            times.append((time.perf_counter() - start) * 1e6)
    return times


def main() -> None:
    imports, firsts = cold_first_parse_ms(7)
    print(f"import kimicode.security.shell (fresh process)     : median {statistics.median(imports):6.1f} ms")
    print(f"first parse (tree-sitter import + grammar + parse) : median {statistics.median(firsts):6.1f} ms")
    parse_command("warm up")
    per_call_us(TYPICAL + HARD, 1, cached=False)  # warm-up: the grammar's first walks
    for label, commands in (("typical", TYPICAL), ("hard", HARD)):
        uncached = per_call_us(commands, 200, cached=False)
        per_call_us(commands, 1, cached=True)  # fill the cache
        cached = per_call_us(commands, 200, cached=True)
        print(
            f"{label:7} ({len(commands):2} commands) uncached: median {statistics.median(uncached):7.1f} µs, "
            f"p95 {percentile(uncached, 0.95):7.1f} µs | cached: median {statistics.median(cached):5.2f} µs, "
            f"p95 {percentile(cached, 0.95):5.2f} µs"
        )
    worst = max(statistics.median(per_call_us([c], 50, cached=False)) for c in TYPICAL + HARD)
    print(target_line("slowest single command, uncached (median)", worst, TARGET_US, "µs"))
    print(machine_line())


if __name__ == "__main__":
    main()
