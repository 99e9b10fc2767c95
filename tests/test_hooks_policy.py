"""End-to-end: what hooks say about a tool call is weighed by the policy, through the real `kimicode -p`
process and the scripted model server: a deny beats -y, an allow answers only what would be asked, a
rewritten call is decided as rewritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.hookscript import QUICK, claude_settings, echo, group, kimicode, last_content, script


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, QUICK)
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    repo.mkdir()
    return repo


def test_a_hook_deny_beats_yolo(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    answer = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                     "permissionDecisionReason": "no network tools here"}}
    write_home_config(home, QUICK + (
        f"[[hooks.PreToolUse]]\nmatcher = \"bash\"\ncommand = {json.dumps(echo(answer))}\n"
    ))
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "go")
    assert proc.returncode == 3, proc.stderr  # the one action the run needed was refused (DESIGN.md B.13)
    assert not (repo / "ran.txt").exists()
    assert "no network tools here" in last_content(fake_llm, 1)


ALLOW = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}}


def test_a_hook_allow_never_beats_a_deny_rule(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, QUICK + (
        f"[[hooks.PreToolUse]]\ncommand = {json.dumps(echo(ALLOW))}\n"
        '[permissions]\ndeny = ["bash(touch denied.txt)"]\n'
    ))
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch denied.txt"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch allowed.txt"})]),
        Reply(content="ok"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "go")  # no -y: only the hook's allow lets a command run
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "denied.txt").exists()
    assert "denied by the rule" in last_content(fake_llm, 1)
    assert (repo / "allowed.txt").exists()


def test_a_hook_allow_answers_for_a_file_edit_nobody_could_approve(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, QUICK + f"[[hooks.PreToolUse]]\nmatcher = \"Write\"\ncommand = {json.dumps(echo(ALLOW))}\n")
    fake_llm.script(Reply(tool_calls=[ToolCall("createfile", {"path": "notes.md", "content": "n\n"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "write")  # headless without -y: refused unless the hook allows
    assert proc.returncode == 0, proc.stderr
    assert (repo / "notes.md").read_text() == "n\n"


def test_a_hook_rewrites_the_call_and_the_policy_decides_on_the_rewrite(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    rewrite = script(tmp_path, "rewrite.py", (
        "call = json.load(sys.stdin)\nnew = dict(call['tool_input'], command='echo rewritten > out.txt')\n"
        "print(json.dumps({'systemMessage': 'the command was rewritten',\n"
        "                  'hookSpecificOutput': {'hookEventName': 'PreToolUse', 'updatedInput': new}}))\n"
    ))
    claude_settings(repo, {"PreToolUse": group(rewrite, "Bash")})
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch second.txt"})]),
        Reply(content="ok"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "--trust", "go")
    assert proc.returncode == 0, proc.stderr
    assert (repo / "out.txt").read_text() == "rewritten\n"
    assert not (repo / "ran.txt").exists() and not (repo / "second.txt").exists()
    assert "the command was rewritten" in proc.stderr
    # the rewritten command is what the policy weighs: a deny rule for it refuses the harmless `ls` asked for
    (repo / "out.txt").unlink()
    write_home_config(home, QUICK + '[permissions]\ndeny = ["bash(echo *)"]\n')
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "ls"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "--trust", "go")
    assert proc.returncode == 3, proc.stderr  # its one action was refused
    assert not (repo / "out.txt").exists()
    assert "denied by the rule" in last_content(fake_llm, 4)
