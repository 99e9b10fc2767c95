"""The control-file fingerprint: each change that makes git run something else is seen; ordinary work
(editing, `git add`, `git commit`) is not a change."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kimicode.vcs.gitwatch import CHANGED_HEADLINE, fingerprint
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(workspace: Path) -> Path:
    _git(workspace, "init", "-q", "-b", "main")
    (workspace / "a.txt").write_text("one\n")
    _git(workspace, "add", "-A")
    _git(workspace, "commit", "-qm", "init")
    return workspace


def _nested(repo: Path) -> None:
    _git(repo, "init", "-q", "sub")
    (repo / "sub" / "f").write_text("x\n")
    _git(repo / "sub", "add", "-A")
    _git(repo / "sub", "commit", "-qm", "s")
    _git(repo, "add", "sub")


def _hook(repo: Path) -> None:
    (repo / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\n")


CHANGES: dict[str, Callable[[Path], None]] = {
    "config": lambda r: _git(r, "config", "core.fsmonitor", "x"),
    "hook": _hook,
    "commondir": lambda r: (r / ".git" / "commondir").write_text("../evil\n"),
    "gitdir-file": lambda r: ((r / ".git").rename(r / "evilgit"), (r / ".git").write_text("gitdir: ./evilgit\n")),
    "gitmodules": lambda r: (r / ".gitmodules").write_text('[submodule "s"]\n\tpath = s\n'),
    "nested-repository": _nested,
    "info-attributes": lambda r: ((r / ".git" / "info").mkdir(exist_ok=True), (r / ".git" / "info" / "attributes").write_text("* filter=x\n")),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_to_what_git_runs_is_seen(repo: Path, change: str) -> None:
    before = fingerprint(repo)
    CHANGES[change](repo)
    assert fingerprint(repo) != before


def test_git_init_in_a_plain_folder_is_seen(workspace: Path) -> None:
    before = fingerprint(workspace)
    _git(workspace, "init", "-q")
    assert fingerprint(workspace) != before


def test_ordinary_work_is_not_a_change(repo: Path) -> None:
    before = fingerprint(repo)
    (repo / "a.txt").write_text("two\n")
    (repo / "b.txt").write_text("new\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "work")
    _git(repo, "status")
    _git(repo, "checkout", "-qb", "topic")
    assert fingerprint(repo) == before


@pytest.mark.quick_retries
def test_a_commit_by_the_agent_is_not_reported(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "echo two > a.txt && git add -A && git -c user.name=a "
                                                      "-c user.email=a@a commit -qm two && git log --oneline | wc -l"})]),
        Reply(content="committed"),
    )
    proc = run_cli(["-p", "-y", "--sandbox", "off", "commit it"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    tool_text = fake_llm.chat_requests[1].messages[-1]["content"]
    assert "2" in tool_text and CHANGED_HEADLINE not in tool_text
