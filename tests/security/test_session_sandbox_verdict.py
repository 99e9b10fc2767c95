"""A session sandbox's reply in two parts (supervisor.py, sandbox_session.py): a command's exit status
comes back as soon as it and everything it started are gone, and the sandbox is put back afterwards, off
the reply's path; its verdict (intact, or retire) is read before the next command is sent. Through the
real CLI and real bubblewrap, as root and as uid 1000, with leftovers that take the supervisor a while to
remove: the next command finds them gone, the exit status is the command's own (never the verdict read
as one), and a sandbox whose verdict is "retire" never gets the next command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import kimicode.security.sandbox_session as session
import tests.security.test_sandbox_escape as escape
from kimicode.security.childenv import command_env
from tests.clirun import cli_env, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.fake_llm.recorded import RecordedRequest
from tests.sandboxing import needs_bwrap
from tests.security.test_sandbox_escape import Box, as_user
from tests.security.test_session_sandbox import STEPS_DRIVER
from tests.security.test_session_sandbox_ahead import new_sandbox
from tests.security.test_session_sandbox_step import run

# That module's fixtures: a box as root and as uid 1000, in a folder both can reach; root only.
box, base, _root_only = escape.box, escape.base, escape._root_only

LEFTOVERS = 3000  # files a command leaves in /tmp: removing them is most of the supervisor's work after it
LEAVE = f"mkdir -p /tmp/left/deep && cd /tmp/left && touch $(seq {LEFTOVERS}) deep/$(seq -s ' deep/' 50)"
NAMESPACE = "readlink /proc/self/ns/pid"  # which sandbox served the command: its own PID namespace
COUNT = "ls -A /tmp | wc -l"  # (a sandbox's /tmp holds the folders the workspace lies in)
LOOK = f"{COUNT}; ulimit -n; {NAMESPACE}"

# The model's commands, one per step (the first of a kind runs in a bubblewrap of its own).
SCRIPT = [
    COUNT,
    f"{LEAVE} && {NAMESPACE} && exit 7",
    f"{LOOK}; exit 3",  # the same sandbox, put back: /tmp empty
    f"{LEAVE} && prlimit --pid 1 --nofile=64:64 && {NAMESPACE} && exit 5",  # PID 1 changed: retire
    f"{LOOK}; exit 4",  # a fresh sandbox
]


def _results(box: Box) -> list[str]:
    """Each command's result as the model got it, through `kimicode -p -y` run as the user under test."""
    write_home_config(box.home, "retry_base_delay = 0.01\nmax_retries = 1\n")

    def model(request: RecordedRequest) -> Reply:
        step = len(request.tool_results())
        if step < len(SCRIPT):
            return Reply(tool_calls=[ToolCall("bash", {"command": SCRIPT[step], "timeout": 60})])
        return Reply(content="Done.")

    with FakeLLM() as fake:
        fake.responder = model
        env = cli_env(box.home, fake.base_url, HOME=str(box.userhome))
        proc = subprocess.run(
            [*as_user(box.user), sys.executable, "-m", "kimicode", "-p", "-y", "go"], cwd=box.workspace,
            env=env, input="", capture_output=True, text=True, timeout=180,
        )
        assert proc.returncode == 0, proc.stderr
        last = fake.chat_requests[-1]
    return [str(result.get("content")) for result in last.tool_results()]


@needs_bwrap
def test_leftovers_slow_to_remove_never_reach_the_next_command_and_a_retired_sandbox_gets_none(box: Box) -> None:
    results = _results(box)
    assert len(results) == len(SCRIPT), results
    count, left, looked, lowered, fresh = results
    at_start = count.split("\n")[0]
    assert "[exit code: 7]" in left and "[exit code: 5]" in lowered, (left, lowered)
    # The same sandbox, its /tmp put back before the command ran; the status is the command's own.
    assert looked.startswith(f"{at_start}\n") and "[exit code: 3]" in looked, (count, looked)
    assert left.split("\n")[0] in looked, (left, looked)
    # The sandbox whose PID 1 a command changed retired: the next ran in a fresh one, with no trace of it.
    assert fresh.startswith(f"{at_start}\n") and "\n64\n" not in fresh and "[exit code: 4]" in fresh, fresh
    assert lowered.split("\n")[0] not in fresh, (lowered, fresh)


# Root only (the supervisor is not dumpable: only root may look into its /tmp from outside): at each
# command sent to a session sandbox, what that sandbox's /tmp holds right then.
SENT_DRIVER = STEPS_DRIVER.replace(
    "async def main():",
    "seen = []\n"
    "send = session.send\n"
    "async def watched(instance, body, fd):\n"
    "    bwrap = instance.popen.pid\n"
    "    supervisor = open(f'/proc/{bwrap}/task/{bwrap}/children').read().split()[0]\n"
    "    seen.append(sorted(os.listdir(f'/proc/{supervisor}/root/tmp')))\n"
    "    return await send(instance, body, fd)\n"
    "session.send = watched\n"
    "async def main():",
).replace("    print(json.dumps(results))", "    print(json.dumps({'results': results, 'seen': seen}))")


@needs_bwrap
def test_no_command_is_sent_to_a_sandbox_before_it_is_put_back(base: Path) -> None:
    box = Box(base, "root")  # (as uid 1000 the test above covers it, by the next command's own view)
    todo = [("sandbox", f"{LEAVE}; exit 7"), ("sandbox", "test -e /tmp/left; exit 3"), ("sandbox", f"{LEAVE}; exit 0")]
    proc = box.host(sys.executable, "-c", SENT_DRIVER, str(box.workspace), str(box.home), json.dumps(todo))
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    results, seen = found["results"], found["seen"]
    assert [r["code"] for r in results] == [7, 3, 0], results
    assert results[0]["sandbox"] == results[1]["sandbox"] == results[2]["sandbox"] is not None, results
    # Each command found the sandbox's /tmp as it was at start (the workspace's parent folder, bound in).
    assert len(seen) == len(todo) and all(tmp == seen[0] for tmp in seen) and "left" not in seen[0], seen


@needs_bwrap
def test_settling_keeps_an_intact_sandbox_and_ends_a_retired_one(tmp_path: Path) -> None:
    sandbox, workspace = new_sandbox(tmp_path)

    async def main() -> list[tuple[int, int]]:
        env = command_env()
        seen = []
        assert await run(sandbox, workspace, "true", env) is None  # the first of its kind: its own bubblewrap
        for text in (LEAVE, f"{LEAVE}; prlimit --pid 1 --nofile=64:64"):
            assert await run(sandbox, workspace, text, env) is not None
            pool = sandbox.sessions
            assert pool is not None
            await pool.settle()
            seen.append((len(pool.idle), len(pool.unjudged)))
        return seen

    try:
        assert asyncio.run(main()) == [(1, 0), (0, 0)]
    finally:
        session.close_all()
