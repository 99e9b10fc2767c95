"""A repository whose git control files a command rewrote: kimicode's own git runs none of its code.

Each attack is planted by a command the model runs (with the sandbox off, so that the plant succeeds
whatever the sandbox holds: what is tested here is the host side) and aims at a marker file outside the
workspace. kimicode's next git call (the REPL's checkpoint, headless submit's change set) must not create
it; the bash result and the REPL say that git's control files changed. A plain `git status` run by the
user afterwards does run the planted code: that proves each plant was live, and is why the warning exists.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kimicode.vcs.gitwatch import CHANGED_HEADLINE, REFUSED_HEADLINE
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl

pytestmark = pytest.mark.quick_retries

FSMONITOR = 'git config core.fsmonitor "touch {marker}; false"\n'
COMMONDIR = (
    "mkdir evil && cp -r .git/objects .git/refs .git/HEAD evil/\n"
    "printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = \"touch {marker}; false\"\\n' > evil/config\n"
    "echo ../evil > .git/commondir\n"
)
GITDIR_FILE = 'mv .git evilgit && echo "gitdir: ./evilgit" > .git && git config core.fsmonitor "touch {marker}; false"\n'
SUBMODULE = (
    "git init -q sub && cd sub && echo a > f && echo 'f filter=ev' > .gitattributes\n"
    "git add -A && git -c user.name=t -c user.email=t@t commit -qm s\n"
    'git config filter.ev.clean "touch {marker}; cat" && git config core.fsmonitor "touch {marker}; false"\n'
    "cd .. && git add sub 2>/dev/null && touch sub/f\n"
)
GIT_INIT = 'git init -q && git config core.fsmonitor "touch {marker}; false"\n'


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(workspace: Path) -> Path:
    _git(workspace, "init", "-q", "-b", "main")
    (workspace / "notes.txt").write_text("one\n")
    _git(workspace, "add", "-A")
    _git(workspace, "commit", "-qm", "init")
    return workspace


def _plant(workspace: Path, script: str, marker: Path) -> None:
    # A file the model's command runs: the attack is the file's bytes, not how the policy reads a command.
    (workspace / "plant.sh").write_text("set -e\n" + script.format(marker=marker))


def _bash_turn(fake_llm: FakeLLM, final: str) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "bash plant.sh"})]),
        Reply(content=final),
        Reply(content="second answer"),
    )


@pytest.mark.parametrize(
    "script", [FSMONITOR, COMMONDIR, GITDIR_FILE, SUBMODULE], ids=["fsmonitor", "commondir", "gitdir-file", "submodule"]
)
def test_repl_checkpoint_after_a_planted_git_runs_none_of_it(
    spawn, fake_llm: FakeLLM, repo: Path, tmp_path: Path, script: str
) -> None:
    marker = tmp_path / "MARKER"
    _plant(repo, script, marker)
    _bash_turn(fake_llm, "planted")
    repl: Repl = spawn("-y", "--sandbox", "off")
    repl.wait_prompt()
    repl.send_line("plant it")
    repl.expect("planted")
    repl.wait_prompt()
    repl.send_line("go on")  # the second turn's checkpoint is kimicode's next git call
    second = repl.expect("second answer")
    repl.wait_prompt()
    assert not marker.exists(), "kimicode's checkpoint ran the repository's planted code"
    tool_message = fake_llm.chat_requests[1].messages[-1]
    assert tool_message["role"] == "tool" and CHANGED_HEADLINE in tool_message["content"]
    # The user sees it at the next turn: the checkpoint was not made, and why.
    assert REFUSED_HEADLINE in second and "start kimicode again" in second
    repl.send_line("/undo")
    assert REFUSED_HEADLINE in repl.expect(REFUSED_HEADLINE)
    repl.wait_prompt()
    repl.send_line("/exit")
    repl.wait_exit()
    # The user's own git is outside kimicode: it runs the plant (hence the warning above).
    subprocess.run(["git", "status"], cwd=repo, capture_output=True)
    assert marker.exists(), "the plant was not live: this test proves nothing"


def test_headless_submit_after_git_init_in_a_plain_folder_runs_none_of_it(
    fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "MARKER"
    _plant(workspace, GIT_INIT, marker)
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "bash plant.sh"})]),
        Reply(tool_calls=[ToolCall("submit", {"summary": "done"})]),
        Reply(content="done"),
    )
    proc = run_cli(
        ["-p", "-y", "--sandbox", "off", "--output-format", "json", "plant it"],
        home=home, cwd=workspace, base_url=fake_llm.base_url,
    )
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "submit's change set ran the repository's planted code"
    assert CHANGED_HEADLINE in fake_llm.chat_requests[1].messages[-1]["content"]
    submitted = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
    assert "Changes: not listed" in submitted and REFUSED_HEADLINE in submitted
    subprocess.run(["git", "status"], cwd=workspace, capture_output=True)
    assert marker.exists(), "the plant was not live: this test proves nothing"
