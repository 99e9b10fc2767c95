"""Deny wins over every spelling: with a deny rule for a program, a command whose program cannot be known
before it runs is refused under -y (and in headless runs) and asked in the REPL; a literal `bash -c '…'` is
read and judged like any other command. Decided through the real Policy.decide."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kimicode.security.policy import Policy
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool

BASH = BashTool()
DENY = [("deny", "bash(touch *)", "user config")]


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    workspace = tmp_path / "proj"
    workspace.mkdir()
    return workspace


def decide(ws: Path, command: str, rules: Any = DENY, **kw: Any):
    policy = Policy(workspace=ws, home=ws.parent / "kimihome", rules=rules, **kw)
    return policy.decide(BASH, {"command": command}, ToolContext(workspace=ws))


SPELLINGS = [
    "touch x",
    "/usr/bin/touch x",
    "\\touch x",
    "'tou'ch x",
    "$'\\x74ouch' x",
    "bash -c 'touch x'",
    "sh -c 'ls; touch x'",
    "bash -c \"$CMD\"",
    "bash -c 'bash -c \"touch x\"'",
    "eval 'touch x'",
    "eval touch x",
    "echo touch x | sh",
    "echo touch x | bash -s",
    "bash <<< 'touch x'",
    "T=touch; $T x",
    "$T x",
    "touch${IFS}x",
    "${T} x",
    "$(echo touch) x",
    "`echo touch` x",
    "{touch,x}",
    "./t x",
    "/tmp/t x",
    "python3 -c 'import os; os.system(\"touch x\")'",
    "python -c 'import pathlib; pathlib.Path(\"x\").touch()'",
    "perl -e 'system(\"touch x\")'",
    "ruby -e 'system(\"touch x\")'",
    "node -e 'require(\"fs\").writeFileSync(\"x\", \"\")'",
    "echo 'import os' | python3",
    "git -c alias.x='!touch x' x",
    "git -c core.pager='touch x' log",
    "awk 'BEGIN { system(\"touch x\") }'",
    "awk 'BEGIN { print | \"sh\" }'",
    "echo x | xargs touch",
    "echo touch | xargs -I{} {} x",
    "find . -maxdepth 0 -exec touch x ';'",
    "find . -exec {} x ';'",
    "env touch x",
    "env -S 'touch x'",
    "command touch x",
    "exec touch x",
    "nohup touch x",
    "timeout 5 touch x",
    "nice touch x",
    "nice -n 5 touch x",
    "sudo touch x",
    "PATH=/tmp/bin:$PATH t x",
    "export PATH=/tmp/bin; t x",
    "LD_PRELOAD=./x.so ls",
    "sed 's/^/touch x/e' README",
    "flock /tmp/l touch x",
    "source ./script.sh",
    ". ./script.sh",
    "f() { touch x; }; f",
    "for c in touch; do $c x; done",
    "coproc touch x",
    "busybox touch x",
    "bash -lc 'touch x'",
    "tar -I 'sh -c \"touch x\"' -xf a.tar",
    "make --eval='x:; touch x' x",
    "script -qc 'touch x'",
    "watch touch x",
    "ln -s /usr/bin/touch t; ./t x",
    "chronic touch x",
    "git --config-env=alias.x=V x",
    "printf 'touch x' | bash",
]


@pytest.mark.parametrize("command", SPELLINGS)
def test_under_yes_every_spelling_of_a_denied_program_is_refused(ws: Path, command: str) -> None:
    decision = decide(ws, command, yolo=True)
    assert decision.action == "deny", decision


@pytest.mark.parametrize("command", SPELLINGS)
def test_headless_refuses_and_the_repl_asks(ws: Path, command: str) -> None:
    assert decide(ws, command, headless=True).action == "deny"
    decision = decide(ws, command)
    assert decision.action in ("ask", "deny")
    if decision.action == "ask":
        assert not decision.rememberable  # an answer for this session must not cover other spellings


def test_a_literal_bash_c_is_judged_by_what_it_runs(ws: Path) -> None:
    decision = decide(ws, "bash -c 'touch x'", yolo=True)
    assert "bash(touch *)" in decision.reason
    assert decide(ws, "bash -c 'ls -la'", yolo=True).action == "allow"
    assert decide(ws, "bash -c 'echo $HOME && git status'", yolo=True).action == "allow"


@pytest.mark.parametrize(
    "command",
    ["ls -la", "git status", "git diff", "cat README", "grep -rn x .", "echo hi", "pytest -q", "make test",
     "npm test", "ls | wc -l", "bash -c 'git status'", "python3 -m pytest -q", "timeout 60 pytest"],
)
def test_known_programs_still_run_under_yes_with_a_deny_rule(ws: Path, command: str) -> None:
    if shutil.which(command.split()[0]) is None and command.split()[0] not in ("echo",):
        pytest.skip(f"{command.split()[0]} is not installed here")
    assert decide(ws, command, yolo=True).action == "allow", command


def test_without_a_deny_rule_nothing_changes_for_yes(ws: Path) -> None:
    for command in ("bash -c \"$CMD\"", "python3 -c 'print(1)'", "./t x"):
        assert decide(ws, command, rules=(), yolo=True).action == "allow"


def test_an_unknown_program_under_a_deny_rule_for_another_tool_is_not_affected(ws: Path) -> None:
    rules = [("deny", "fetch(https://evil.example/*)", "user config")]
    assert decide(ws, "python3 -c 'print(1)'", rules=rules, yolo=True).action == "allow"
