"""Swarm json output: the waves the concurrency cap forced, and the concurrency the run reached."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_script import is_sub_agent, steps_done, task_number

# Steps each sub-agent takes, in spawn order; with 2 slots they run in 3 waves.
SUB_STEPS = [3, 1, 1, 2, 1]


def responder(request: RecordedRequest) -> Reply:
    done = steps_done(request)
    if not is_sub_agent(request):
        if done == 0:
            agents = [{"role": "worker", "task": f"TASK-{i}: work"} for i in range(len(SUB_STEPS))]
            return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
        return Reply(content="all done")
    i = task_number(request)
    if done + 1 < SUB_STEPS[i]:
        return Reply(delay=0.02, tool_calls=[ToolCall("createfile", {"path": f"f{i}-{done}.txt", "content": "x"})])
    return Reply(delay=0.02, content=f"worker {i} finished")


def test_swarm_json_reports_forced_waves_and_concurrency_reached(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, "swarm_concurrency = 2\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    fake_llm.responder = responder
    proc = run_cli(
        ["-p", "-y", "--mode", "swarm", "--output-format", "json", "do the work"],
        home=home, cwd=workspace, base_url=fake_llm.base_url,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["critical_steps"] == 2 + 3  # as if all five ran at once
    # 5 sub-agents on 2 slots: 3 waves, 2 forced; list-scheduled in spawn order the step's longest path is 4
    assert result["forced_waves"] == 2
    assert result["critical_steps_capped"] == 2 + 4
    assert result["queued_sub_agents"] == 3
    assert result["concurrency_reached"] == 2 == fake_llm.max_in_flight
    assert result["concurrency_limit"] == 2

    text = run_cli(["-p", "-y", "--mode", "swarm", "do the work"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert text.returncode == 0, text.stderr
    assert "6 with the 2 extra waves the concurrency cap forced" in text.stderr
    assert "concurrency reached 2 (limit 2)" in text.stderr
