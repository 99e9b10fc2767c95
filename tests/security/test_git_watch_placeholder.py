"""A sandboxed command in a folder that is no repository: the empty ``.git`` the sandbox puts in place as a
mount point is no change to what git runs (no note, kimicode's git keeps working), while a command that
really makes a repository there is still seen."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kimicode.security.sandbox import detect_sandbox
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from kimicode.vcs.checkpoints import make_undo_provider
from kimicode.vcs.git import check_repository
from kimicode.vcs.gitwatch import CHANGED_HEADLINE, fingerprint, refusal
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.sandboxing import needs_bwrap


def _bash(workspace: Path, home: Path, command: str, escalate: str = "") -> str:
    sandbox = detect_sandbox("workspace-write", False, workspace, home)
    args = {"command": command, **({"escalate": escalate} if escalate else {})}
    return asyncio.run(BashTool().run(args, ToolContext(workspace=workspace, sandbox=sandbox))).text


@needs_bwrap
def test_a_sandboxed_command_in_a_plain_folder_changes_nothing_git_runs(workspace: Path, home: Path) -> None:
    text = _bash(workspace, home, "echo hi > f.txt && cat f.txt")
    assert "hi" in text
    assert (workspace / ".git").is_dir(), "the sandbox put no placeholder here: this test proves nothing"
    assert CHANGED_HEADLINE not in text
    assert refusal(workspace, None) is None
    check_repository(workspace)  # kimicode's own git is not refused here
    undo = make_undo_provider(workspace, home, "s1")
    undo.begin_turn("turn")
    undo.before_write(workspace / "f.txt")
    (workspace / "f.txt").write_text("changed\n")
    assert undo.undo().restored == ["f.txt"]


@needs_bwrap
def test_git_init_outside_the_sandbox_over_the_placeholder_is_seen(workspace: Path, home: Path) -> None:
    _bash(workspace, home, "true")
    text = _bash(workspace, home, "git init -q .", escalate="make a repository")
    assert CHANGED_HEADLINE in text


def test_an_empty_git_folder_is_no_repository_but_a_filled_one_is(workspace: Path) -> None:
    before = fingerprint(workspace)
    (workspace / ".git").mkdir()
    assert fingerprint(workspace) == before
    (workspace / ".git" / "hooks").mkdir()
    assert fingerprint(workspace) != before


@pytest.mark.quick_retries
@needs_bwrap
def test_headless_bash_in_a_plain_folder_sends_no_note(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "echo done-here"})]),
        Reply(content="ok"),
    )
    proc = run_cli(
        ["-p", "-y", "--sandbox", "workspace-write", "run it"], home=home, cwd=workspace, base_url=fake_llm.base_url
    )
    assert proc.returncode == 0, proc.stderr
    tool_text = fake_llm.chat_requests[1].messages[-1]["content"]
    assert "done-here" in tool_text and CHANGED_HEADLINE not in tool_text
