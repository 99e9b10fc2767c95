"""End-to-end through the real CLI and the scripted model server: what headless and plan mode refuse as not
read-only really does not run, with the sandbox off too; and what they allow as read-only runs with the whole
workspace read-only."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.frontends.headless.printer import EXIT_REFUSED
from kimicode.tools.bash import exit_line

from tests.clirun import run_cli, write_home_config
from tests.conftest import QUICK_RETRIES as FAST
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.sandboxing import needs_bwrap

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


# KIMICODE_HOME comes from tests/conftest.py, with quick retries.
pytestmark = pytest.mark.quick_retries


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    (ws / "README").write_text("the readme\n")
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    subprocess.run([*GIT, "add", "README"], cwd=ws, check=True)
    subprocess.run([*GIT, "commit", "-qm", "first"], cwd=ws, check=True)
    return ws


@pytest.fixture
def user_home(home: Path) -> Path:
    user = home.parent / "userhome"  # HOME of the CLI under test (tests/clirun.py)
    (user / ".ssh").mkdir(parents=True, exist_ok=True)
    (user / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY----- sekrit-key\n")
    (user / ".git-credentials").write_text("https://u:sekrit-token@example.com\n")
    return user


def kimicode(fake: FakeLLM, home: Path, cwd: Path, *args: str):
    return run_cli(list(args), home=home, cwd=cwd, base_url=fake.base_url)


def refusals(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("kimicode: refused")]


SUBSCRIPT_ATTACKS = [
    "[[ 'x[$(touch {m})]' -eq 0 ]]",
    "[ -v 'a[$(touch {m})]' ]",
    "test -v 'a[$(touch {m})]'",
    "(( x[$(touch {m})] ))",
    "echo $(( 'a[$(touch {m})]' ))",
]


@pytest.mark.parametrize("flags", [["-p"], ["-p", "--plan", "-y"]], ids=["headless", "plan-with-y"])
@pytest.mark.parametrize("sandbox", ["off", "workspace-write"])
def test_subscript_substitutions_do_not_run(
    fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path, flags: list[str], sandbox: str
) -> None:
    markers = [tmp_path / f"marker{i}" for i in range(len(SUBSCRIPT_ATTACKS))]
    calls = [ToolCall("bash", {"command": a.format(m=m)}) for a, m in zip(SUBSCRIPT_ATTACKS, markers)]
    fake_llm.script(Reply(tool_calls=calls), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, *flags, "--sandbox", sandbox, "look around")
    assert proc.returncode == EXIT_REFUSED, proc.stderr  # every call refused (DESIGN.md B.13)
    assert [m for m in markers if m.exists()] == []
    lines = refusals(proc.stderr)
    assert len(lines) == len(SUBSCRIPT_ATTACKS), proc.stderr
    assert all(line.startswith("kimicode: refused bash ") for line in lines)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def test_no_sandbox_dev_tcp_in_any_spelling_connects_nowhere(
    fake_llm: FakeLLM, home: Path, workspace: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    commands = [
        f"cat < /dev/${{PATH:0:0}}tcp/127.0.0.1/{port}",
        f"cat < /dev/tcp/127.0.0.1/{port}",
        f"head -c 1 < /dev/tcp$EMPTY/127.0.0.1/{port}",
        f"echo hi > /dev/tcp/127.0.0.1/{port}",
    ]
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": c}) for c in commands]), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "--sandbox", "off", "read")
    assert proc.returncode == EXIT_REFUSED, proc.stderr  # every call refused (DESIGN.md B.13)
    assert len(refusals(proc.stderr)) == len(commands), proc.stderr
    readable, _, _ = select.select([listener], [], [], 0)  # a connection would be waiting in the backlog
    assert readable == []


def test_no_sandbox_git_into_a_bare_repository_runs_no_diff_external(
    fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "diff-external-ran"
    script = tmp_path / "external.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    (workspace / "README").write_text("changed\n")
    subprocess.run([*GIT, "commit", "-qam", "second"], cwd=workspace, check=True)
    bare = workspace / "evil.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(workspace), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "diff.external", str(script)], check=True)
    # The attack works when git runs: the test can fail.
    subprocess.run(["git", "-C", str(bare), "diff", "HEAD~1", "HEAD"], check=True, capture_output=True)
    assert marker.exists()
    marker.unlink()
    calls = ["git -C evil.git diff HEAD~1 HEAD", "cd evil.git && git diff HEAD~1 HEAD", "git --git-dir=evil.git log -p"]
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": c}) for c in calls]), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "--sandbox", "off", "review")
    assert proc.returncode == EXIT_REFUSED, proc.stderr  # every call refused (DESIGN.md B.13)
    assert not marker.exists()
    assert len(refusals(proc.stderr)) == len(calls), proc.stderr


def test_no_sandbox_secret_globs_print_nothing(
    fake_llm: FakeLLM, home: Path, workspace: Path, user_home: Path
) -> None:
    (workspace / "keys").symlink_to(user_home / ".ssh")
    calls = ["cat ~/.ss?/id_rsa ~/.git-credential?", "cat $HOME/.ss*/id_rsa", "cat keys/*", "cat ../*/.ssh/id_rsa"]
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": c}) for c in calls]), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "--sandbox", "off", "read")
    assert proc.returncode == EXIT_REFUSED, proc.stderr  # every call refused (DESIGN.md B.13)
    results = [r["content"] for r in fake_llm.chat_requests[1].tool_results()]
    assert len(results) == len(calls)
    assert not any("sekrit" in text for text in results)
    assert "sekrit" not in proc.stdout
    assert len(refusals(proc.stderr)) == len(calls), proc.stderr


@needs_bwrap
@pytest.mark.parametrize("flags", [["-p"], ["-p", "--plan"], ["-p", "--plan", "-y"]], ids=["headless", "plan", "plan-with-y"])
def test_read_only_commands_run_with_the_workspace_read_only(
    fake_llm: FakeLLM, home: Path, workspace: Path, flags: list[str]
) -> None:
    # `git status` is read-only, yet it rewrites .git/index when a file's timestamp changed; the sandbox
    # holds .git read-only anyway, so the witness is the workspace itself: `find -writable` asks the kernel
    # (EROFS on a read-only bind, for root too; bash's `test -w` answers yes to root without asking).
    index = workspace / ".git" / "index"
    before = index.stat().st_mtime_ns
    stamp = time.time() + 5
    os.utime(workspace / "README", (stamp, stamp))
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "git status --short"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "find README -writable"})]),
        Reply(content="clean"),
    )
    proc = kimicode(fake_llm, home, workspace, *flags, "--sandbox", "workspace-write", "status")
    assert proc.returncode == 0, proc.stderr
    assert refusals(proc.stderr) == []
    assert index.stat().st_mtime_ns == before
    assert fake_llm.chat_requests[2].tool_results()[0]["content"] == exit_line(0)  # nothing listed
    # The same check approved by -y runs in the ordinary sandbox, where the workspace is writable.
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "find README -writable"})]), Reply(content="clean"))
    proc = kimicode(fake_llm, home, workspace, "-p", "-y", "--sandbox", "workspace-write", "status")
    assert proc.returncode == 0, proc.stderr
    assert fake_llm.chat_requests[-1].tool_results()[0]["content"].startswith("README")


DENIED_SPELLINGS = [
    "bash -c 'touch {m}'",
    "eval 'touch {m}'",
    "echo touch {m} | sh",
    "T=touch; $T {m}",
    "$(echo touch) {m}",
    "python3 -c 'import pathlib; pathlib.Path(\"{m}\").touch()'",
    "git -c alias.x='!touch {m}' x",
    "awk 'BEGIN {{ system(\"touch {m}\") }}'",
    "cp /usr/bin/touch ./t && ./t {m}",
]


def test_a_deny_rule_holds_under_yes_for_every_spelling(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    write_home_config(home, FAST + '[permissions]\ndeny = ["bash(touch *)"]\n')
    markers = [f"m{i}" for i in range(len(DENIED_SPELLINGS))]
    calls = [ToolCall("bash", {"command": c.format(m=m)}) for c, m in zip(DENIED_SPELLINGS, markers)]
    fake_llm.script(Reply(tool_calls=calls), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "-y", "make files")
    assert proc.returncode == EXIT_REFUSED, proc.stderr  # every call refused (DESIGN.md B.13)
    assert [m for m in markers if (workspace / m).exists()] == []
    lines = refusals(proc.stderr)
    assert len(lines) == len(DENIED_SPELLINGS), proc.stderr
    assert all("bash(touch *)" in line for line in lines)
