"""Swarm json output: the waves the endpoint's limit forced (none when nothing queued), and the concurrency\nthe run reached."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kimicode.config import Config
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_gate import RoundGate
from tests.swarm_script import is_sub_agent, steps_done, task_number

# Steps each sub-agent takes, in spawn order.
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


def run_json(fake_llm: FakeLLM, tmp_path: Path, config: str) -> tuple[dict, str]:
    home = tmp_path / "home"
    write_home_config(home, config)
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    proc = run_cli(
        ["-p", "-y", "--mode", "swarm", "--output-format", "json", "do the work"],
        home=home, cwd=workspace, base_url=fake_llm.base_url,
    )
    assert proc.returncode == 0, proc.stderr
    text = run_cli(["-p", "-y", "--mode", "swarm", "do the work"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert text.returncode == 0, text.stderr
    return json.loads(proc.stdout), text.stderr


def test_nothing_queued_reports_no_waves(fake_llm: FakeLLM, tmp_path: Path) -> None:
    assert Config(api_key="k").swarm_concurrency > len(SUB_STEPS)  # the limit takes all five at once
    # Each run's five first sub-agent requests are answered once all five are in: how many the server sees
    # at once is then the client's doing, not how soon the first answer came back on a loaded machine.
    everyone_asked = threading.Barrier(len(SUB_STEPS), timeout=60)

    def held(request: RecordedRequest) -> Reply:
        if is_sub_agent(request) and steps_done(request) == 0:
            everyone_asked.wait()
        return responder(request)

    fake_llm.responder = held
    result, text = run_json(fake_llm, tmp_path, "")
    assert result["critical_steps"] == 2 + 3  # all five ran at once
    assert result["forced_waves"] == 0
    assert result["critical_steps_capped"] == result["critical_steps"]
    assert result["queued_sub_agents"] == 0
    assert result["concurrency_reached"] == fake_llm.max_in_flight == len(SUB_STEPS)
    assert "extra waves" not in text


def test_swarm_json_reports_forced_waves_and_concurrency_reached(fake_llm: FakeLLM, tmp_path: Path) -> None:
    gate = RoundGate(len(SUB_STEPS))

    def held(request: RecordedRequest) -> Reply:
        if is_sub_agent(request) and steps_done(request) == 0:
            gate.hold()  # the limit (2) lets two through; all five have asked before they are answered
        return responder(request)

    fake_llm.responder = held
    # An endpoint that takes two at once: slow start probes wider, is refused (429), and holds at two.
    fake_llm.concurrency_limit = 2
    result, text = run_json(fake_llm, tmp_path, "swarm_concurrency = 2\n")
    assert result["critical_steps"] == 2 + 3  # as if all five ran at once
    # the first steps of five sub-agents met a limit of 2: three queued, at least one wave more
    assert result["queued_sub_agents"] >= 3  # and a later step may find the two slots taken again
    assert result["forced_waves"] >= 1
    assert result["critical_steps_capped"] >= result["critical_steps"]
    # requests in flight from the client's side, counting those the endpoint refused
    assert result["concurrency_reached"] >= fake_llm.max_in_flight == 2
    assert result["concurrency_limit"] >= 2
    assert "extra waves" in text
