"""The permission policy's cost per call: Policy.decide() on typical bash commands, with a few rules in force,
and on file-tool calls (createfile, strreplace, view of a file in the workspace, as a swarm's sub-agents make
them by the hundred).

Parsing is cached per command text, so the first call of a text (cold) and a repeat (warm) are shown apart;
a model rarely sends the same command twice, so the cold figure is the one that matters. A file-tool decision
resolves its paths (symlinks) afresh every time: nothing of one decision is kept for the next. It is measured
as CPU time (time.process_time), which the machine's load disturbs less than the wall clock; the lstat calls
per decision are counted too.

Run: python benchmarks/policy_bench.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import machine_line, target_line  # noqa: E402
from kimicode.security.policy import Policy  # noqa: E402
from kimicode.security.shell import parse_command  # noqa: E402
from kimicode.tools.base import ToolContext  # noqa: E402
from kimicode.tools.bash import BashTool  # noqa: E402
from kimicode.tools.createfile import CreateFileTool  # noqa: E402
from kimicode.tools.strreplace import StrReplaceTool  # noqa: E402
from kimicode.tools.view import ViewTool  # noqa: E402

COMMANDS = [
    "git status",
    "ls -la src",
    "pytest -q tests/test_app.py -k 'login and not slow'",
    "npm test -- --watch=false",
    "cat README.md | head -50",
    "git diff HEAD~1 -- src/ | grep -n TODO",
    "make build && ./dist/app --version",
    "python -m pip install -e . > install.log 2>&1",
    "find . -name '*.py' -not -path './.venv/*' | xargs wc -l",
    "cd frontend && npm run lint; echo done",
]
# The hard ones: what the read-only proof and the deny rules have to see through.
HARD = [
    "[[ 'x[$(touch W)]' -eq 0 ]] && test -v 'a[$(touch W)]'",
    "cat < /dev/${PATH:0:0}tcp/127.0.0.1/9",
    "git -C evil.git diff HEAD~1 HEAD",
    "cat ~/.ss?/id_rsa ~/.git-credential?",
    "wc -l src/*.py | sort -n | tail -3",
    "bash -c 'ls; sh -c \"rm -rf build\"'",
    "echo touch x | sh",
    "git -c alias.x='!touch x' x",
    "find . -name '*.py' -exec grep -l TODO {} + | xargs wc -l",
    "cd src && grep -rn 'def main' . | head -20 && git log -p -3 -- main.py",
]
RULES = [
    ("deny", "bash(rm -rf *)", "user config"),
    ("deny", "bash(touch *)", "user config"),
    ("ask", "bash(git push *)", "user config"),
    ("allow", "bash(npm test *)", "user config"),
    ("allow", "bash(pytest *)", "saved for this project"),
    ("allow", "view(~/.config/app/**)", "user config"),
]
ROUNDS = 200
HARD_TARGET_US = 1000.0  # Policy.decide per call on the hard commands
FILE_TARGET_US = 250.0  # Policy.decide per file-tool call (CPU)


def main() -> None:
    tool = BashTool()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        ctx = ToolContext(workspace=workspace)
        policy = Policy(workspace=workspace, home=workspace / ".kimihome", rules=RULES)
        (workspace / "src").mkdir()
        for i in range(20):
            (workspace / "src" / f"m{i}.py").write_text("x = 1\n")
        subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
        cold: list[float] = []
        warm: list[float] = []
        hard: list[float] = []
        for command in HARD + COMMANDS:  # warm-up: imports, the grammar's first walks
            policy.decide(tool, {"command": f"{command} # warm-up"}, ctx)
        for round_ in range(ROUNDS):  # hard, cold and warm interleaved, so load hits them alike
            for command in HARD:
                text = f"{command} # {round_}"
                start = time.perf_counter()
                policy.decide(tool, {"command": text}, ctx)
                hard.append((time.perf_counter() - start) * 1e6)
            for command in COMMANDS:
                text = f"{command} # {round_}"  # a new text each round: nothing cached
                start = time.perf_counter()
                policy.decide(tool, {"command": text}, ctx)
                cold.append((time.perf_counter() - start) * 1e6)
                start = time.perf_counter()
                policy.decide(tool, {"command": text}, ctx)
                warm.append((time.perf_counter() - start) * 1e6)
        parse: list[float] = []
        for round_ in range(ROUNDS):
            for command in COMMANDS:
                text = f"{command} # p{round_}"
                start = time.perf_counter()
                parse_command(text)
                parse.append((time.perf_counter() - start) * 1e6)
    print(f"policy.decide per bash call, {len(cold)} calls over {len(COMMANDS)} command shapes, {len(RULES)} rules")
    print(f"  cold (new command text): median {statistics.median(cold):7.1f} µs   p95 {_p95(cold):7.1f} µs")
    print(f"  warm (parse cached):     median {statistics.median(warm):7.1f} µs   p95 {_p95(warm):7.1f} µs")
    print(f"  of which parsing (cold): median {statistics.median(parse):7.1f} µs")
    print(f"  hard commands (cold, {len(HARD)} shapes): median {statistics.median(hard):7.1f} µs   p95 {_p95(hard):7.1f} µs   max {max(hard):7.1f} µs")
    print(target_line("hard commands, Policy.decide (median)", statistics.median(hard), HARD_TARGET_US, "µs"))
    file_cpu, lstats = file_tool_decisions()
    print(f"policy.decide per file-tool call (createfile, strreplace, view in the workspace), {len(file_cpu)} rounds "
          f"of {len(FILE_TOOLS)}: CPU median {statistics.median(file_cpu):6.1f} µs "
          f"(min–max {min(file_cpu):.1f}–{max(file_cpu):.1f}); {lstats} lstat calls per decision")
    print(target_line("file-tool call, Policy.decide CPU (median)", statistics.median(file_cpu), FILE_TARGET_US, "µs"))
    print(machine_line())


FILE_TOOLS = [CreateFileTool(), StrReplaceTool(), ViewTool()]


def file_tool_decisions() -> tuple[list[float], int]:
    """CPU µs per decision, per round (the median of FILE_TOOLS × 50 calls), and lstat calls per decision."""
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "project"
        (workspace / "src" / "app").mkdir(parents=True)
        (workspace / "src" / "app" / "main.py").write_text("x = 1\n")
        ctx = ToolContext(workspace=workspace)
        policy = Policy(workspace=workspace, home=Path(tmp) / ".kimihome", rules=RULES, yolo=True)
        args = {"path": "src/app/main.py"}
        for tool in FILE_TOOLS:  # warm-up
            policy.decide(tool, args, ctx)
        calls = [0]
        real_lstat = os.lstat

        def counting(*a: Any, **k: Any) -> os.stat_result:
            calls[0] += 1
            return real_lstat(*a, **k)

        os.lstat = counting  # posixpath.realpath looks os.lstat up at each call
        try:
            policy.decide(FILE_TOOLS[0], args, ctx)
        finally:
            os.lstat = real_lstat
        per_round: list[float] = []
        for _ in range(ROUNDS // 4):
            start = time.process_time()
            for _ in range(50):
                for tool in FILE_TOOLS:
                    policy.decide(tool, args, ctx)
            per_round.append((time.process_time() - start) / (50 * len(FILE_TOOLS)) * 1e6)
    return per_round, calls[0]


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95)]


if __name__ == "__main__":
    main()
