"""swarm_isolation = "worktree": sub-agents edit private git worktrees; a wave's end merges them back."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_script import first_user_text, is_sub_agent, main_requests, steps_done, task_number

SHARED_LINES = [f"line {n}" for n in range(1, 10)]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, 'retry_base_delay = 0.01\nswarm_isolation = "worktree"\n')
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "u")
    git(repo, "config", "user.email", "u@example.com")
    (repo / "shared.txt").write_text("\n".join(SHARED_LINES) + "\n")
    git(repo, "add", "shared.txt")
    git(repo, "commit", "-qm", "initial")
    # Uncommitted state the sub-agents must see: a staged edit and an untracked file.
    (repo / "shared.txt").write_text("\n".join(SHARED_LINES) + "\nline 10 (uncommitted)\n")
    git(repo, "add", "shared.txt")
    (repo / "notes.txt").write_text("untracked notes\n")
    return repo


def responder_for(edits: dict[int, tuple[str, str]]) -> Callable[[RecordedRequest], Reply]:
    """Orchestrator spawns one sub-agent per edit; each sub-agent strreplaces, creates its own file, submits."""

    def respond(request: RecordedRequest) -> Reply:
        done = steps_done(request)
        if not is_sub_agent(request):
            if done == 0:
                agents = [{"role": f"editor {i}", "task": f"TASK-{i}: edit shared.txt"} for i in edits]
                return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
            return Reply(content="merged")
        i = task_number(request)
        old, new = edits[i]
        if done == 0:
            return Reply(tool_calls=[ToolCall("strreplace", {"path": "shared.txt", "old_str": old, "new_str": new})])
        if done == 1:
            return Reply(tool_calls=[ToolCall("bash", {"command": f"cat notes.txt > own{i}.txt && echo by {i} >> own{i}.txt"})])
        return Reply(tool_calls=[ToolCall("submit", {"summary": f"edited as {i}"})])

    return respond


def spawn_report(fake_llm: FakeLLM) -> str:
    return main_requests(fake_llm.chat_requests)[1].tool_results()[-1]["content"]


def test_three_sub_agents_edit_one_file_in_worktrees_and_all_changes_land(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    head, index_before = git(repo, "rev-parse", "HEAD"), git(repo, "ls-files", "-s")
    edits = {0: ("line 2\n", "line 2 by 0\n"), 1: ("line 5\n", "line 5 by 1\n"), 2: ("line 10 (uncommitted)", "line 10 by 2")}
    fake_llm.responder = responder_for(edits)
    proc = run_cli(["-p", "-y", "--mode", "swarm", "edit"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr

    expected = list(SHARED_LINES)
    expected[1], expected[4] = "line 2 by 0", "line 5 by 1"
    assert (repo / "shared.txt").read_text() == "\n".join(expected) + "\nline 10 by 2\n"
    for i in edits:
        assert (repo / f"own{i}.txt").read_text() == f"untracked notes\nby {i}\n"
    # no worktrees, refs or directories left behind; the user's HEAD, branch and index untouched
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert git(repo, "for-each-ref", "refs/kimicode-swarm") == ""
    assert not (repo / ".git" / "kimicode-worktrees").exists()
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(repo, "ls-files", "-s") == index_before

    report = spawn_report(fake_llm)
    assert "3 sub-agents ran (3 done)" in report
    assert "Merged into the workspace: own0.txt, shared.txt" in report
    assert "Merged into the workspace: own2.txt, shared.txt" in report
    # each sub-agent was told where its private workspace is, and it is not the user's
    first = next(r for r in fake_llm.chat_requests if is_sub_agent(r))
    assert "kimicode-worktrees" in first_user_text(first)


def test_conflicting_edits_land_once_and_the_other_is_reported_with_its_worktree(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    edits = {0: ("line 3\n", "line 3 by 0\n"), 1: ("line 3\n", "line 3 by 1\n")}
    fake_llm.responder = responder_for(edits)
    proc = run_cli(["-p", "-y", "--mode", "swarm", "edit"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr

    text = (repo / "shared.txt").read_text()
    assert "line 3 by 0\n" in text and "by 1" not in text and "<<<<<<<" not in text
    assert (repo / "own0.txt").exists() and not (repo / "own1.txt").exists()  # all or nothing per sub-agent

    report = spawn_report(fake_llm)
    sub2 = report.split("## sub-2")[1]
    assert "Conflicts: shared.txt" in sub2 and "none of this sub-agent's changes were merged" in sub2
    kept = Path(sub2.split("kept in the worktree ")[1].split(" ")[0])
    assert "line 3 by 1\n" in (kept / "shared.txt").read_text() and (kept / "own1.txt").exists()
    assert len(git(repo, "worktree", "list").splitlines()) == 2  # only the conflicting one is kept


def test_outside_git_the_sub_agents_share_the_workspace_with_a_note(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "shared.txt").write_text("\n".join(SHARED_LINES) + "\n")
    (plain / "notes.txt").write_text("untracked notes\n")
    fake_llm.responder = responder_for({0: ("line 1\n", "line 1 by 0\n")})
    proc = run_cli(["-p", "-y", "--mode", "swarm", "edit"], home=home, cwd=plain, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert (plain / "shared.txt").read_text().startswith("line 1 by 0\n")
    assert (plain / "own0.txt").exists()
    report = spawn_report(fake_llm)
    assert report.startswith("Note: swarm_isolation is 'worktree' but the workspace is not inside a git repository")
    assert "Merged into" not in report
