"""Check, then use: a link swapped between the policy's decision and the tool's open must not carry a file
tool to another file. Through the real CLI; the swap is made at the exact point between the two by a hook
loaded into the CLI process (sitecustomize), so the tests do not depend on winning a race."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.clirun import REPO, run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall

SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- sekrit-4d1f\n"
DECOY = "nothing to see here\n"

# Runs in the CLI process: once the policy has decided on the first call of the named tool, the link is
# replaced (atomically, as `ln -sfn X l.new && mv -T l.new l` does) before the tool opens anything.
HOOK = '''
import json, os
_swap = json.loads(os.environ.get("SWAP_AFTER_DECIDE") or "null")
if _swap:
    from kimicode.security import policy as _policy
    _decide = _policy.Policy.decide
    _done = []
    def decide(self, tool, args, ctx):
        decision = _decide(self, tool, args, ctx)
        if tool.name == _swap["tool"] and not _done:
            _done.append(1)
            os.symlink(_swap["to"], _swap["link"] + ".new")
            os.replace(_swap["link"] + ".new", _swap["link"])
        return decision
    _policy.Policy.decide = decide
'''


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 1\n")
    return home


@pytest.fixture
def secret(home: Path) -> Path:
    ssh = home.parent / "userhome" / ".ssh"  # HOME of the CLI under test (tests/clirun.py)
    ssh.mkdir(parents=True)
    (ssh / "id_rsa").write_text(SECRET)
    return ssh / "id_rsa"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    (ws / "real").mkdir()
    (ws / "d").symlink_to("real")
    (ws / "decoy.txt").write_text(DECOY)
    (ws / "l").symlink_to("decoy.txt")
    return ws


def kimicode(fake: FakeLLM, home: Path, ws: Path, *args: str, swap: dict[str, str] | None = None):
    hook = home.parent / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    env = {"PYTHONPATH": f"{hook}{os.pathsep}{REPO}", "SWAP_AFTER_DECIDE": json.dumps(swap)}
    return run_cli(list(args), home=home, cwd=ws, base_url=fake.base_url, env_extra=env)


def results(fake: FakeLLM) -> list[str]:
    return [r["content"] for r in fake.chat_requests[1].tool_results()]


def test_createfile_through_a_link_swapped_to_git_after_the_decision(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    config = (workspace / ".git" / "config").read_text()
    swap = {"tool": "createfile", "link": str(workspace / "d"), "to": ".git"}
    call = ToolCall("createfile", {"path": "d/config", "content": "[core]\n\tfsmonitor = touch PWNED\n", "overwrite": True})
    fake_llm.script(Reply(tool_calls=[call]), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "go", "-y", swap=swap)
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(workspace / "d") == ".git"  # the swap happened
    assert (workspace / ".git" / "config").read_text() == config
    assert not (workspace / "real" / "config").exists()
    [text] = results(fake_llm)
    assert ".git/config" in text and "not what was decided on" in text, text


def test_createfile_of_a_new_directory_through_a_swapped_link_makes_nothing_there(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    swap = {"tool": "createfile", "link": str(workspace / "d"), "to": ".git"}
    call = ToolCall("createfile", {"path": "d/hooks2/sub/pre-commit", "content": "#!/bin/sh\ntouch PWNED\n"})
    fake_llm.script(Reply(tool_calls=[call]), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "go", "-y", swap=swap)
    assert proc.returncode == 0, proc.stderr
    assert not (workspace / ".git" / "hooks2").exists()  # not even the empty directories
    assert "not what was decided on" in results(fake_llm)[0]


@pytest.mark.parametrize("flags", [[], ["-y"]], ids=["headless", "yolo"])
def test_view_through_a_link_swapped_to_a_secret_after_the_decision(
    fake_llm: FakeLLM, home: Path, workspace: Path, secret: Path, flags: list[str]
) -> None:
    swap = {"tool": "view", "link": str(workspace / "l"), "to": str(secret)}
    fake_llm.script(Reply(tool_calls=[ToolCall("view", {"path": "l"})]), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "go", *flags, swap=swap)
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(workspace / "l") == str(secret)
    [text] = results(fake_llm)
    assert "sekrit" not in text and "not what was decided on" in text, text
    assert "secret path" in text


def test_edits_through_a_link_swapped_after_the_decision(fake_llm: FakeLLM, home: Path, workspace: Path, secret: Path) -> None:
    swap = {"tool": "strreplace", "link": str(workspace / "l"), "to": str(secret)}
    call = ToolCall("strreplace", {"path": "l", "old_str": "sekrit", "new_str": "x"})
    fake_llm.script(Reply(tool_calls=[call]), Reply(content="done"))
    proc = kimicode(fake_llm, home, workspace, "-p", "go", "-y", swap=swap)
    assert proc.returncode == 0, proc.stderr
    assert secret.read_text() == SECRET
    [text] = results(fake_llm)
    assert "sekrit" not in text and "not what was decided on" in text, text


def test_links_inside_the_workspace_keep_working(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(
        Reply(
            tool_calls=[
                ToolCall("view", {"path": "l"}),
                ToolCall("createfile", {"path": "d/new/made.txt", "content": "made\n"}),
                ToolCall("strreplace", {"path": "l", "old_str": "nothing", "new_str": "something"}),
                ToolCall("view", {"path": "d"}),
            ]
        ),
        Reply(content="done"),
    )
    proc = kimicode(fake_llm, home, workspace, "-p", "go", "-y")
    assert proc.returncode == 0, proc.stderr
    texts = results(fake_llm)
    assert "nothing to see here" in texts[0]
    assert (workspace / "real" / "new" / "made.txt").read_text() == "made\n"
    assert (workspace / "l").is_symlink() and (workspace / "decoy.txt").read_text() == "something to see here\n"
    assert "new/made.txt" in texts[3], texts[3]


def test_a_link_flipping_between_a_decoy_and_a_secret_never_shows_the_secret(
    fake_llm: FakeLLM, home: Path, workspace: Path, secret: Path
) -> None:
    """The race as an attacker runs it: another process flips the link while 150 views read it."""
    link, spare = workspace / "l", str(workspace / "l.new")
    stop = threading.Event()
    flips = [0]

    def flip() -> None:
        while not stop.is_set():
            for target in (str(secret), "decoy.txt"):
                os.symlink(target, spare)
                os.replace(spare, link)
            flips[0] += 1

    fake_llm.script(Reply(tool_calls=[ToolCall("view", {"path": "l"}) for _ in range(150)]), Reply(content="done"))
    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        proc = run_cli(["-p", "go"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    finally:
        stop.set()
        flipper.join()
    assert proc.returncode == 0, proc.stderr
    texts = results(fake_llm)
    assert len(texts) == 150 and flips[0] > 0
    assert [t for t in texts if "sekrit" in t] == []
