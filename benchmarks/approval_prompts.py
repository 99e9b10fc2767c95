"""Approval questions in an ordinary scripted session: read, edit, run the tests, commit.

Each call goes through the real `Policy.decide` (an interactive run in an untrusted folder, no -y); every
question is answered "yes for this session" where that is offered, as a user who wants to get on would.
Prints one line per step that asks and the total; run it against two trees to compare:

    PYTHONPATH=. python benchmarks/approval_prompts.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from kimicode.security.policy import Policy
from kimicode.tools.base import ToolContext
from kimicode.tools.registry import swe_tools

# (phase, tool, arguments): what a model does to fix a bug in a small Python project.
SESSION: list[tuple[str, str, dict[str, Any]]] = [
    ("read", "view", {"path": "."}),
    ("read", "bash", {"command": "git status"}),
    ("read", "bash", {"command": "grep -rn parse_date src"}),
    ("read", "view", {"path": "src/dates.py"}),
    ("read", "view", {"path": ".env.example"}),
    ("read", "bash", {"command": "git log --oneline -5"}),
    ("test", "bash", {"command": "pytest -q"}),
    ("edit", "strreplace", {"path": "src/dates.py", "old_str": "a", "new_str": "b"}),
    ("edit", "insert", {"path": "src/dates.py", "insert_line": 3, "new_str": "import re\n"}),
    ("edit", "createfile", {"path": "tests/test_dates.py", "content": "def test(): pass\n"}),
    ("test", "bash", {"command": "pytest -q tests/test_dates.py"}),
    ("edit", "strreplace", {"path": "tests/test_dates.py", "old_str": "pass", "new_str": "assert True"}),
    ("test", "bash", {"command": "pytest -q -x tests/test_dates.py -k date"}),
    ("test", "bash", {"command": "CI=1 pytest -q"}),
    ("test", "bash", {"command": "ruff check src"}),
    ("read", "bash", {"command": "git diff"}),
    ("commit", "bash", {"command": "git add -A"}),
    ("commit", "bash", {"command": "git commit -m 'Parse dates with a timezone'"}),
    ("edit", "strreplace", {"path": "README.md", "old_str": "x", "new_str": "y"}),
    ("commit", "bash", {"command": "git add README.md"}),
    ("commit", "bash", {"command": "git commit -m 'README: timezones'"}),
]


def run() -> tuple[int, dict[str, int], list[str]]:
    tools = {tool.name: tool for tool in swe_tools()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace = root / "proj"
        (workspace / "src").mkdir(parents=True)
        (workspace / "src" / "dates.py").write_text("a\n")
        (workspace / ".env.example").write_text("TZ=UTC\n")
        policy = Policy(workspace=workspace, home=root / "kimihome")
        ctx = ToolContext(workspace=workspace)
        asked: list[str] = []
        per_phase: dict[str, int] = {}
        for phase, name, args in SESSION:
            decision = policy.decide(tools[name], args, ctx)
            if decision.action == "ask":
                asked.append(f"{phase:7} {name} {args.get('command') or args.get('path')}")
                per_phase[phase] = per_phase.get(phase, 0) + 1
                if decision.rememberable:
                    policy.remember(tools[name], args, ctx)
            elif decision.action == "deny":
                asked.append(f"{phase:7} {name} {args.get('command') or args.get('path')} (refused: {decision.reason})")
                per_phase[phase] = per_phase.get(phase, 0) + 1
    return len(asked), per_phase, asked


def main() -> int:
    total, per_phase, asked = run()
    for line in asked:
        print(line)
    phases = ("read", "edit", "test", "commit")
    print(" | ".join(f"{p}: {per_phase.get(p, 0)}" for p in phases) + f" | total: {total} of {len(SESSION)} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
