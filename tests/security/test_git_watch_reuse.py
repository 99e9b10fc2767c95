"""The git watch reuses its last fingerprint while the kernel reports nothing it depends on changed: each
change that makes git run something else is still seen, however it is made, after a run of steps long
enough for the reuse to be active.

Each test runs one headless session (`-p -y`, with the sandbox off where it would stop the write) of
several bash steps: quiet ones first (from the third or so on, the fingerprint is reused), the attack,
then quiet ones again. The tool result of the attack step must carry the note, the history the model
gets afterwards must keep it, and the quiet steps must carry none. Several attacks go through a hard
link made two steps before: a write there changes the control file with no report on its folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kimicode.vcs.gitwatch import CHANGED_HEADLINE
from tests.clirun import cli_env
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.sandboxing import missing, needs_bwrap

pytestmark = pytest.mark.quick_retries

QUIET = ["echo q1", "echo q2", "echo q3", "echo q4"]  # enough steps for the next fingerprint to be reused


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def _repository(folder: Path) -> None:
    _git(folder, "init", "-q", "-b", "main")
    (folder / "a.txt").write_text("one\n")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-qm", "init")


@dataclass
class Attack:
    command: str  # the step that changes what git runs
    prepare: str = ""  # a step two steps before it (a hard link made there)
    repository: bool = True
    escalate: str = ""  # run the attack outside the sandbox (the sandbox is on)
    setup: list[str] = field(default_factory=list)  # shell lines run in the workspace before the session


SUBMODULE_SETUP = ["git init -q sub", "cd sub && echo x > f && git add f && git -c user.name=t -c user.email=t@t commit -qm s"]
ATTACKS: dict[str, Attack] = {
    "config through a hard link": Attack(
        "printf '[core]\\n\\tfsmonitor = \"touch marker; false\"\\n' >> cfg", prepare="ln .git/config cfg"),
    "hook added": Attack("printf '#!/bin/sh\\ntouch marker\\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout"),
    "hook modified through a hard link": Attack(
        "printf 'touch marker\\n' >> hk", prepare="ln .git/hooks/pre-commit.sample hk"),
    "hook made runnable through a hard link": Attack("chmod 700 hk", prepare="ln .git/hooks/pre-commit.sample hk"),
    ".git replaced by a link": Attack("mv .git real && ln -s real .git"),
    ".git replaced by a gitdir file": Attack("mv .git evilgit && echo 'gitdir: ./evilgit' > .git"),
    ".git moved away": Attack("mv .git ../gone"),
    ".git made where there was none": Attack("git init -q", repository=False),
    ".gitmodules changed": Attack("printf '[submodule \"s\"]\\n\\tpath = s\\n' > .gitmodules"),
    "gitlink added to the index": Attack("git add sub 2>/dev/null; git ls-files -s sub", setup=SUBMODULE_SETUP),
    "info/attributes through a hard link": Attack(
        "echo '* filter=x' >> attrs", prepare="ln .git/info/attributes attrs",
        setup=["mkdir -p .git/info && touch .git/info/attributes"]),
}


def _session(
    fake_llm: FakeLLM, home: Path, cwd: Path, steps: list[tuple[str, str]], sandbox: str, wrap: list[str] | None = None
) -> list[str]:
    """Run ``steps`` (command, escalation) as bash calls of one session; the tool result of each.

    Each command is put in a script the step runs (`sh FILE`): what a command does to git's files is
    what is tested here, not whether the approval policy would have let it write there."""
    plays = cwd / ".plays"  # (inside: the sandbox shows the workspace)
    plays.mkdir(exist_ok=True)
    calls = []
    for n, (command, escalate) in enumerate(steps):
        (plays / f"{n}.sh").write_text(command + "\n")
        calls.append(ToolCall("bash", {"command": f"sh {plays / f'{n}.sh'}", **({"escalate": escalate} if escalate else {})}))
    fake_llm.script(*[Reply(tool_calls=[call]) for call in calls], Reply(content="done"))
    escalation = ["--allow-escalation"] if sandbox != "off" else []
    argv = [*(wrap or []), sys.executable, "-m", "kimicode", "-p", "-y", "--sandbox", sandbox, *escalation, "go"]
    proc = subprocess.run(argv, cwd=cwd, env=cli_env(home, fake_llm.base_url), input="", capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(fake_llm.chat_requests) == len(steps) + 1
    last = fake_llm.chat_requests[-1].messages
    results = [str(m["content"]) for m in last if m.get("role") == "tool"]
    assert len(results) == len(steps)
    for n, request in enumerate(fake_llm.chat_requests[1:]):  # what the model got after each step, then
        assert str(request.messages[-1]["content"]) == results[n]
    return results


def _check(results: list[str], attack_at: int) -> None:
    assert CHANGED_HEADLINE in results[attack_at], results[attack_at]
    quiet = [r for n, r in enumerate(results) if n != attack_at]
    assert not [r for r in quiet if CHANGED_HEADLINE in r], quiet


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_change_after_reuse_began_is_noted(fake_llm: FakeLLM, home: Path, workspace: Path, name: str) -> None:
    attack = ATTACKS[name]
    if attack.repository:
        _repository(workspace)
    for line in attack.setup:
        subprocess.run(["sh", "-c", line], cwd=workspace, check=True, capture_output=True)
    before = [attack.prepare, "echo q5"] if attack.prepare else []
    steps = [(c, "") for c in [*QUIET, *before, attack.command, *QUIET]]
    attack_at = len(QUIET) + len(before)
    _check(_session(fake_llm, home, workspace, steps, "off"), attack_at)


def test_commondir_repointed_in_a_linked_worktree_is_noted(
    fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    main = tmp_path / "main"
    main.mkdir()
    _repository(main)
    linked = workspace / "linked"
    _git(main, "worktree", "add", "-q", str(linked))
    git_dir = Path(_git(linked, "rev-parse", "--absolute-git-dir"))
    assert (git_dir / "commondir").is_file()
    attack = f"echo ../../.. > {git_dir / 'commondir'}"
    steps = [(c, "") for c in [*QUIET, attack, *QUIET]]
    _check(_session(fake_llm, home, linked, steps, "off"), len(QUIET))


@needs_bwrap
@pytest.mark.parametrize("command", ["git init -q .", "mkdir .git/hooks"])
def test_a_repository_made_in_the_sandbox_placeholder_is_noted(
    fake_llm: FakeLLM, home: Path, workspace: Path, command: str
) -> None:
    steps = [*[(c, "") for c in QUIET], (command, "make a repository here"), *[(c, "") for c in QUIET]]
    results = _session(fake_llm, home, workspace, steps, "workspace-write")
    assert (workspace / ".git").is_dir()
    _check(results, len(QUIET))


def test_a_folder_mounted_over_git_is_noted(fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path) -> None:
    """A mount makes no inotify report: the reuse heeds the mount table too (root, in a mount namespace of
    the test's own so that the host's table stays as it is)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        missing("root and unshare (a mount namespace of the test's own)")
    _repository(workspace)
    other = tmp_path / "other"
    other.mkdir()
    _repository(other)
    (other / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\ntouch marker\n")
    steps = [(c, "") for c in [*QUIET, f"mount --bind {other / '.git'} .git; findmnt -T .git; ls -i -d .git", *QUIET]]
    results = _session(fake_llm, home, workspace, steps, "off", wrap=["unshare", "-m", "--propagation", "private"])
    _check(results, len(QUIET))
