"""Every sub-agent of a swarm sends its orchestrator's prompt-cache key and the same bytes up to its task, so
an endpoint that routes its prompt cache by key serves the prefix they share from one cache."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_script import is_sub_agent, main_requests, steps_done, sub_requests, task_number

AGENTS = 4
USER_TURN = b'{"role":"user","content":"'


def respond(request: RecordedRequest) -> Reply:
    if is_sub_agent(request):
        return Reply(tool_calls=[ToolCall("submit", {"summary": f"part {task_number(request)} done"})])
    if steps_done(request) == 0:
        agents = [{"role": "builder", "task": f"TASK-{i}: build part {i}"} for i in range(AGENTS)]
        return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
    return Reply(content="all parts built")


def test_sub_agents_send_the_orchestrators_cache_key_and_one_prefix(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.responder = respond
    home = tmp_path / "home"
    write_home_config(home, "")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    proc = run_cli(
        ["-p", "-y", "--mode", "swarm", "--output-format", "json", "build every part"],
        home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    session = json.loads(proc.stdout)["session_id"]
    chats = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    subs = sub_requests(chats)
    assert len(subs) == AGENTS
    keys = {r.body["prompt_cache_key"] for r in [*main_requests(chats), *subs]}
    assert keys == {session}
    # The bytes before the user message (model, tools, the system prompt) are one prefix for all of them,
    # and each one's task comes after it.
    prefixes = {r.raw[: r.raw.index(USER_TURN)] for r in subs}
    assert len(prefixes) == 1
    assert all(b"TASK-" not in prefix for prefix in prefixes)
