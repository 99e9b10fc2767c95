"""A wide swarm's commands share the session's long-lived sandboxes rather than each starting a bubblewrap:
sub-agents of one workspace run at most MAX_LIVE sandboxed commands at once, each in a reused sandbox."""

from __future__ import annotations

import os
import time
from pathlib import Path

from kimicode.security.sandbox_session import MAX_LIVE
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.sandboxing import needs_bwrap
from tests.swarm_script import is_sub_agent, steps_done, task_number
from tests.test_swarm_width import run_swarm

WORKERS = 3 * MAX_LIVE
TOOL_SLOTS = 2 * MAX_LIVE  # the swarm's tool runs at once: wider than the sandboxes kept alive
# Each command names the PID namespace it runs in: one bubblewrap, one namespace.
COMMAND = "readlink /proc/self/ns/pid > ns/{i}.txt"


@needs_bwrap
def test_sub_agents_commands_share_the_session_sandboxes(fake_llm: FakeLLM, tmp_path: Path) -> None:
    def responder(request: RecordedRequest) -> Reply:
        if not is_sub_agent(request):
            if steps_done(request) == 0:
                agents = [{"role": "worker", "task": f"TASK-{i}: run"} for i in range(WORKERS)]
                return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
            return Reply(content="all done")
        i = task_number(request)
        if steps_done(request) == 0:
            return Reply(tool_calls=[ToolCall("bash", {"command": COMMAND.format(i=i)})])
        return Reply(content=f"worker {i} finished")

    fake_llm.responder = responder
    (tmp_path / "ws" / "ns").mkdir(parents=True)
    result = run_swarm(fake_llm, tmp_path, f"swarm_concurrency = {TOOL_SLOTS}\n")
    assert result["sub_agents_failed"] == 0
    namespaces = [(tmp_path / "ws" / "ns" / f"{i}.txt").read_text().strip() for i in range(WORKERS)]
    assert all(ns.startswith("pid:[") for ns in namespaces), namespaces
    host = (Path("/proc/self/ns/pid")).readlink().name
    assert host not in namespaces  # every command ran sandboxed
    # The first command of a kind runs in a bubblewrap of its own; the rest in at most MAX_LIVE sandboxes.
    assert len(set(namespaces)) <= MAX_LIVE + 1, sorted(set(namespaces))


def sandbox_started_in(workspace: Path, deadline: float) -> bool:
    """Whether a long-lived sandbox (bubblewrap running the supervisor) was started for ``workspace``
    before ``deadline`` (time.monotonic()): watched for in /proc, as it happens."""
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if os.path.basename(argv[0]) == b"bwrap" and any(b"kimicode-supervisor" in a for a in argv):
                    if (entry / "cwd").readlink() == workspace:
                        return True
            except (OSError, ValueError):
                continue  # not ours to read, or gone meanwhile
        time.sleep(0.01)
    return False


@needs_bwrap
def test_sandboxes_start_while_the_sub_agents_first_turn_runs(fake_llm: FakeLLM, tmp_path: Path) -> None:
    workspace = (tmp_path / "ws").resolve()
    seen: list[bool] = []

    def responder(request: RecordedRequest) -> Reply:
        if not is_sub_agent(request):
            if steps_done(request) == 0:
                agents = [{"role": "worker", "task": f"TASK-{i}: run"} for i in range(2)]
                return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
            return Reply(content="all done")
        i = task_number(request)
        if steps_done(request) == 0:
            # Answered once a sandbox for the workspace is up: started before any command was asked for.
            seen.append(sandbox_started_in(workspace, time.monotonic() + 30))
            return Reply(tool_calls=[ToolCall("bash", {"command": f"tr '\\0' ' ' < /proc/1/cmdline > pid1-{i}.txt"})])
        return Reply(content=f"worker {i} finished")

    fake_llm.responder = responder
    workspace.mkdir(parents=True)
    result = run_swarm(fake_llm, tmp_path)
    assert result["sub_agents_failed"] == 0
    assert seen == [True, True]
    # Even the first command ran in a long-lived sandbox (its PID 1 the supervisor), not in one of its own.
    for i in range(2):
        assert "kimicode-supervisor" in (workspace / f"pid1-{i}.txt").read_text()
