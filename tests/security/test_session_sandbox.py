"""The session-long sandbox (sandbox_session.py, supervisor.py) under attack, as root and as uid 1000.

Every attack of test_sandbox_escape.py runs again here through the bash tool, in a sandbox that already
served a command (so in the long-lived one, not a fresh bubblewrap). Then the attacks a long-lived sandbox
invites: what one command leaves for the next (processes, files in the private folders, IPC objects), the
supervisor and its channel as a target, and the host changing what the sandbox was built from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import kimicode.security.sandbox_launch as launch
import kimicode.security.sandbox_session as session
import tests.security.test_sandbox_escape as escape
from kimicode.security.sandbox import detect_sandbox
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from tests.mcp_servers.fixtures import live_processes_with
from tests.sandboxing import needs_bwrap
from tests.security.test_sandbox import wait_gone
from tests.security.test_sandbox_escape import *  # noqa: F403 - every attack, again against this sandbox
from tests.security.test_sandbox_escape import Box

# Runs each step through the bash tool, all in one session: ["sandbox", command] in the session sandbox,
# ["host", command] as the user's own shell outside it. Prints one JSON result per step.
STEPS_DRIVER = """
import asyncio, json, os, re, subprocess, sys
from pathlib import Path
from kimicode.security.sandbox import detect_sandbox
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
import kimicode.security.sandbox_launch as launch
import kimicode.security.sandbox_session as session
served = []  # the session sandbox (its bubblewrap's pid) of each command that ran in one
finish = session.SandboxedCommand.finish
session.SandboxedCommand.finish = lambda self: (served.append(self.instance.popen.pid), finish(self))[1]
workspace, home, steps = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
sandbox = detect_sandbox("workspace-write", False, workspace, home)
assert sandbox.backend == "bwrap", sandbox.unavailable
ctx = ToolContext(workspace=workspace, sandbox=sandbox)

async def main():
    await BashTool().run({"command": "true"}, ctx)  # the first command of a kind: a bubblewrap of its own
    results = []
    for where, command in steps:
        if where == "end-supervisor":  # as the OOM killer would, from outside: the sandbox's PID 1
            bwrap = sandbox.sessions.idle[-1].popen.pid
            for pid in open(f"/proc/{bwrap}/task/{bwrap}/children").read().split():
                os.kill(int(pid), 9)
            os.waitid(os.P_PID, bwrap, os.WEXITED | os.WNOWAIT)
            results.append({"code": 0, "out": "", "sandbox": bwrap})
            continue
        if where == "host":
            proc = subprocess.run(["bash", "-c", command], cwd=workspace, capture_output=True, text=True)
            results.append({"code": proc.returncode, "out": proc.stdout + proc.stderr, "sandbox": None})
            continue
        count = len(served)
        text = (await BashTool().run({"command": command, "timeout": 30}, ctx)).text
        found = re.findall(r"\\[exit code: (\\d+)", text)
        results.append({"code": int(found[-1]) if found else None, "out": text,
                        "sandbox": served[-1] if len(served) > count else None})
    print(json.dumps(results))

asyncio.run(main())
"""

# What test_sandbox_escape's attacks run through: a warm-up command first, then the attack in the same
# session sandbox (the bash tool's own path to it, without the tool's imports); prints the attack's result
# as that module's driver does.
ATTACK_DRIVER = """
import asyncio, json, os, sys
from pathlib import Path
from kimicode.security.childenv import command_env
from kimicode.security.sandbox import detect_sandbox
from kimicode.security.sandbox_session import start_command
workspace, home, command = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
sandbox = detect_sandbox("workspace-write", False, workspace, home)
assert sandbox.backend == "bwrap", sandbox.unavailable

async def run(text):
    started = await start_command(sandbox, ["bash", "-c", text], workspace, command_env())
    assert started is not None, "no session sandbox"
    proc, fd = started
    out = b""
    while chunk := await asyncio.to_thread(os.read, fd, 65536):
        out += chunk
    os.close(fd)
    code = await proc.wait()
    proc.finish()
    return code, out.decode(errors="replace"), proc.instance

async def main():
    # The first command of a kind gets a bubblewrap of its own (no session sandbox for a lone command).
    assert await start_command(sandbox, ["true"], workspace, command_env()) is None
    first, attack = await run("true"), await run(command)
    assert first[2] is attack[2], "the attack ran in a fresh sandbox, not the one that served a command"
    print(json.dumps({"code": attack[0], "out": attack[1]}))

asyncio.run(main())
"""


@pytest.fixture(autouse=True)
def _through_the_session_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(escape, "DRIVER", ATTACK_DRIVER)
    yield


def steps(box: Box, *todo: tuple[str, str]) -> list[dict[str, object]]:
    proc = box.host(sys.executable, "-c", STEPS_DRIVER, str(box.workspace), str(box.home), json.dumps(todo))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@needs_bwrap
def test_what_a_command_leaves_running_is_gone_before_the_next_starts(box: Box) -> None:
    tag = box.marker.name
    forged = f"FORGED-{tag}"  # (its own word: the same attack may run for another user at the same time)
    # A left-behind writer that would forge the next command's output (its pipe, through /proc) and plant
    # a file in the workspace, detached every way a process can be.
    plant = (
        f"setsid nohup bash -c 'trap \"\" PIPE HUP TERM; while :; do echo {forged} > {tag}; "
        f"for f in /proc/[0-9]*/fd/1; do echo {forged} >> $f; done 2>/dev/null; done' >/dev/null 2>&1 & "
        "( ( sleep 600 & ) & ) ; echo planted"
    )
    first, between, second = steps(box, ("sandbox", plant), ("host", f"rm -f {tag}; echo cleared"),
                                   ("sandbox", f"test -e {tag} && echo STILL-THERE; echo second"))
    assert "planted" in str(first["out"]) and "cleared" in str(between["out"])
    assert "FORGED" not in str(second["out"]) and "STILL-THERE" not in str(second["out"]), second["out"]
    assert not (box.workspace / tag).exists()
    assert first["sandbox"] == second["sandbox"] is not None  # the same long-lived sandbox served both
    assert live_processes_with(forged) == []


@needs_bwrap
def test_the_supervisor_cannot_be_killed_reached_or_replaced_from_inside(box: Box) -> None:
    attack = (
        "kill -9 1; kill -9 -1; kill -STOP 1; "
        "ls -l /proc/1/fd/ 2>&1 | grep -c socket; "  # the channel's descriptor, by its link
        "for fd in /proc/1/fd/*; do echo forged > $fd; done 2>/dev/null; "
        "cat /proc/1/environ /proc/1/mem >/dev/null 2>&1 && echo READ-SUPERVISOR; "
        "ls -l /proc/$$/fd 2>/dev/null | grep -c socket; echo attacked"  # (the pipeline's own pipe may close mid-listing)
    )
    first, second = steps(box, ("sandbox", attack), ("sandbox", "echo still-served"))
    out = str(first["out"])
    assert "attacked" in out and "READ-SUPERVISOR" not in out
    assert "0\n0\nattacked" in out, out  # no socket seen in the supervisor's descriptors, none held
    assert "still-served" in str(second["out"]) and second["code"] == 0
    assert first["sandbox"] == second["sandbox"] is not None  # the same supervisor, not a restarted one


@needs_bwrap
def test_private_folders_and_ipc_are_empty_again_for_the_next_command(box: Box) -> None:
    plant = (
        "touch /tmp/planted /dev/shm/planted /run/planted /dev/planted; mkdir -p /tmp/deep/er; "
        "ln -s /etc/passwd /tmp/link; ipcmk -M 4096 >/dev/null; ipcmk -Q >/dev/null; echo planted"
    )
    look = "ls -A /tmp /dev/shm /run; ls /dev | grep -c planted; ipcs -m -q | grep -c '^0x'; echo looked"
    first, second = steps(box, ("sandbox", plant), ("sandbox", look))
    assert "planted" in str(first["out"])
    out = str(second["out"])
    assert "looked" in out and "planted" not in out and "deep" not in out, out
    assert "link" not in out and "\n0\n0\nlooked" in out, out
    assert first["sandbox"] == second["sandbox"] is not None


@needs_bwrap
def test_a_folder_around_the_workspace_moved_inside_ends_that_sandbox_and_nothing_of_the_host(box: Box) -> None:
    (box.workspace / "keep.txt").write_text("keep\n")
    top = "/" + box.workspace.parts[1]  # /tmp: the folders the workspace lies in are the sandbox's own
    parent = Path(*box.workspace.parts[:3])  # /tmp/kimicode-escape-xxxx: made inside to hold the bind
    first, second = steps(box, ("sandbox", f"cd {top} && mv {parent} {top}/moved && echo moved"),
                          ("sandbox", "cat keep.txt && echo fresh"))
    assert (box.workspace / "keep.txt").read_text() == "keep\n"  # the bind was never emptied
    assert "keep\nfresh" in str(second["out"]), second["out"]
    if "moved" in str(first["out"]):
        assert first["sandbox"] != second["sandbox"]  # it could not be put back: a fresh sandbox


@needs_bwrap
def test_a_git_folder_replaced_on_the_host_between_commands_stays_read_only(box: Box) -> None:
    box.repo()
    first, host, second = steps(
        box,
        ("sandbox", "true"),
        ("host", "mv .git .git-old && mkdir .git && cp -r .git-old/* .git/ && echo replaced"),
        ("sandbox", f"printf '{box.fsmonitor()}' >> .git/config; echo x > .git/planted; echo tried"),
    )
    assert "replaced" in str(host["out"]) and "tried" in str(second["out"])
    assert not (box.workspace / ".git" / "planted").exists(), second["out"]
    assert "fsmonitor" not in (box.workspace / ".git" / "config").read_text()
    assert first["sandbox"] != second["sandbox"]


@needs_bwrap
def test_a_secret_that_appears_between_commands_is_hidden_from_the_next(box: Box) -> None:
    first, host, second = steps(
        box, ("sandbox", "true"), ("host", "echo SECRET-VALUE-9 > .env && echo made"), ("sandbox", "cat .env; echo read")
    )
    assert "made" in str(host["out"]) and "read" in str(second["out"])
    assert "SECRET-VALUE-9" not in str(second["out"]), second["out"]


@needs_bwrap
def test_commands_at_the_same_time_get_sandboxes_of_their_own(box: Box) -> None:
    driver = STEPS_DRIVER.replace(
        "async def main():",
        "async def main():\n"
        "    await BashTool().run({'command': 'true'}, ctx)\n"
        "    waits = BashTool().run({'command': 'while [ ! -e go ]; do :; done; echo A', 'timeout': 20}, ctx)\n"
        "    starts = BashTool().run({'command': 'touch go; echo B', 'timeout': 20}, ctx)\n"
        "    a, b = await asyncio.gather(waits, starts)\n"
        "    print(json.dumps([{'out': a.text}, {'out': b.text}]))\n"
        "    return\n"
        "async def unused():",
    )
    proc = box.host(sys.executable, "-c", driver, str(box.workspace), str(box.home), "[]")
    assert proc.returncode == 0, proc.stderr
    a, b = json.loads(proc.stdout.splitlines()[-1])
    assert "A\n[exit code: 0]" in a["out"] and "B\n[exit code: 0]" in b["out"], (a, b)


@needs_bwrap
def test_limits_a_command_puts_on_the_supervisor_do_not_reach_the_next_command(box: Box) -> None:
    # Same user, so prlimit and taskset work on PID 1 without ptrace; later commands would inherit them.
    first, second = steps(
        box,
        ("sandbox", "prlimit --pid 1 --nofile=12:12 --fsize=1:1 && taskset -p 1 1 >/dev/null && echo lowered"),
        ("sandbox", "ulimit -n; ulimit -f; head -c 4096 /dev/zero > big && wc -c < big"),
    )
    assert "lowered" in str(first["out"]), first["out"]
    out = str(second["out"])
    assert "\n12\n" not in f"\n{out}" and "4096" in out and second["code"] == 0, out
    assert first["sandbox"] != second["sandbox"]


@needs_bwrap
def test_a_supervisor_that_died_between_commands_is_replaced_without_a_word(box: Box) -> None:
    first, ended, second = steps(box, ("sandbox", "echo one"), ("end-supervisor", ""), ("sandbox", "echo two"))
    assert first["sandbox"] == ended["sandbox"]
    assert "two\n[exit code: 0]" in str(second["out"]) and second["sandbox"] != first["sandbox"], second


@needs_bwrap
def test_where_no_session_sandbox_starts_each_command_gets_a_bubblewrap_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch, "BOOTSTRAP", "raise SystemExit(3)")  # as a python that cannot run there
    workspace = tmp_path / "ws"
    workspace.mkdir()
    sandbox = detect_sandbox("workspace-write", False, workspace, tmp_path / "home")
    ctx = ToolContext(workspace=workspace, sandbox=sandbox)
    for n in range(3):
        text = asyncio.run(BashTool().run({"command": f"touch /tmp/{n}; ls /tmp | grep -cx '[0-9]'; mkdir .git/x"}, ctx)).text
        assert text.startswith("1\n") and "[exit code: 1]" in text, text  # private /tmp; .git read-only
    assert sandbox.sessions is not None and sandbox.sessions.failed and not sandbox.sessions.idle


@needs_bwrap
def test_an_interrupted_command_takes_its_sandbox_and_everything_in_it_along(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    sandbox = detect_sandbox("workspace-write", False, workspace, tmp_path / "home")
    ctx = ToolContext(workspace=workspace, sandbox=sandbox)
    tag = f"held-{uuid.uuid4().hex[:8]}"

    async def interrupt() -> str:
        await BashTool().run({"command": "true"}, ctx)  # the first of its kind: a bubblewrap of its own
        await BashTool().run({"command": "true"}, ctx)  # the session sandbox starts
        served = sandbox.sessions.idle[-1]
        # Two processes that would run for ten minutes (the tag is their $0): one left in the background
        # in a session of its own, one the command waits for.
        held = f"(setsid bash -c 'sleep 600; :' {tag} &); bash -c 'sleep 600; :' {tag}"
        call = asyncio.ensure_future(BashTool().run({"command": held}, ctx))
        while len(live_processes_with(tag)) < 2:  # both are running
            await asyncio.sleep(0.01)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        assert served not in sandbox.sessions.idle and not served.alive
        return (await BashTool().run({"command": "echo next"}, ctx)).text

    assert "next\n[exit code: 0]" in asyncio.run(interrupt())
    assert wait_gone(tag) == []


@needs_bwrap
def test_a_command_interrupted_as_it_ends_does_not_hand_its_dying_sandbox_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    sandbox = detect_sandbox("workspace-write", False, workspace, tmp_path / "home")
    ctx = ToolContext(workspace=workspace, sandbox=sandbox)
    calls: list[asyncio.Future[object]] = []  # the tool call to interrupt once its command ended
    readable = session.SandboxedCommand._readable

    def noted(self: session.SandboxedCommand) -> None:
        readable(self)
        if self.ended.done() and calls:
            calls.pop().cancel()  # the command ended on its own, and the interrupt comes in that very turn

    monkeypatch.setattr(session.SandboxedCommand, "_readable", noted)

    async def interrupt() -> str:
        await BashTool().run({"command": "true"}, ctx)  # the first of its kind: a bubblewrap of its own
        await BashTool().run({"command": "true"}, ctx)  # the session sandbox starts
        served = sandbox.sessions.idle[-1]
        call = asyncio.ensure_future(BashTool().run({"command": "echo done"}, ctx))
        calls.append(call)
        with contextlib.suppress(asyncio.CancelledError):
            await call
        assert not calls and call.cancelled()
        assert served not in sandbox.sessions.idle and not served.alive  # killed with it: never reused
        return (await BashTool().run({"command": "echo next"}, ctx)).text

    assert "next\n[exit code: 0]" in asyncio.run(interrupt())
