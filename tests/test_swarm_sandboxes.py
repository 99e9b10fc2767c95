"""A wide swarm's commands share the session's long-lived sandboxes rather than each starting a bubblewrap:
sub-agents of one workspace run at most MAX_LIVE sandboxed commands at once, each in a reused sandbox."""

from __future__ import annotations

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
