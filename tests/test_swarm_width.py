"""The swarm is as wide as the endpoint: every sub-agent starts and the model-request limiter, not a
sub-agent cap, bounds how many talk to the model at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kimicode.config import Config
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_gate import RoundGate
from tests.swarm_script import is_sub_agent, steps_done, task_number

AGENTS = 50


def spawn_all(request: RecordedRequest) -> Reply:
    if steps_done(request) == 0:
        agents = [{"role": "worker", "task": f"TASK-{i}: work"} for i in range(AGENTS)]
        return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
    return Reply(content="all done")


def work(request: RecordedRequest) -> Reply:
    i, done = task_number(request), steps_done(request)
    return Reply(tool_calls=[ToolCall("createfile", {"path": f"f{i}-{done}.txt", "content": "x"})])


def run_swarm(fake_llm: FakeLLM, tmp_path: Path, config: str = "") -> dict:
    home = tmp_path / "home"
    write_home_config(home, config)
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    proc = run_cli(
        ["-p", "-y", "--mode", "swarm", "--output-format", "json", "do the work"],
        home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fifty_sub_agents_reach_fifty_requests_in_flight(fake_llm: FakeLLM, tmp_path: Path) -> None:
    assert Config(api_key="k").swarm_concurrency < AGENTS  # the limit starts narrower than the swarm
    gate = RoundGate(AGENTS)
    fake_llm.concurrency_limit = AGENTS

    def responder(request: RecordedRequest) -> Reply:
        if not is_sub_agent(request):
            return spawn_all(request)
        if gate.full_rounds:
            return Reply(content=f"worker {task_number(request)} finished")
        gate.hold()  # answered once the limiter lets no more through, or all fifty are in
        return work(request)

    fake_llm.responder = responder
    result = run_swarm(fake_llm, tmp_path)
    assert fake_llm.max_in_flight == AGENTS
    assert gate.full_rounds >= 1
    assert result["sub_agents"] == AGENTS and result["sub_agents_failed"] == 0
    assert result["concurrency_reached"] == AGENTS
    assert fake_llm.throttled == 0


def test_a_server_that_takes_ten_fails_no_sub_agent(fake_llm: FakeLLM, tmp_path: Path) -> None:
    width = 10
    assert Config(api_key="k").swarm_concurrency > width  # the limit starts wider than the server
    fake_llm.concurrency_limit = width
    pause = threading.Event()  # never set: its wait is the pause between looks at the server's counter

    def responder(request: RecordedRequest) -> Reply:
        if not is_sub_agent(request):
            return spawn_all(request)
        if steps_done(request) == 0:
            # Hold the first requests until the server has turned one away, so the limit must back off.
            for _ in range(1000):
                if fake_llm.throttled or pause.wait(0.01):
                    break
        if steps_done(request) < 2:
            return work(request)
        return Reply(content=f"worker {task_number(request)} finished")

    fake_llm.responder = responder
    result = run_swarm(fake_llm, tmp_path)
    assert fake_llm.throttled > 0
    assert fake_llm.max_in_flight <= width
    assert result["sub_agents"] == AGENTS and result["sub_agents_failed"] == 0


TOOL_SLOTS = 2
WORKERS = 5
# Each command marks itself running and waits (up to 2 s) until three are running at once, then writes how
# many it saw: with two tool slots no command ever sees three.
COMMAND = (
    "touch run/{i}; n=0; while [ $(ls run | wc -l) -lt 3 ] && [ $n -lt 200 ]; do sleep 0.01; n=$((n+1)); done; "
    "ls run | wc -l > seen-{i}.txt; rm run/{i}"
)


def test_tool_runs_hold_swarm_concurrency_slots(fake_llm: FakeLLM, tmp_path: Path) -> None:
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
    (tmp_path / "ws" / "run").mkdir(parents=True)
    result = run_swarm(fake_llm, tmp_path, f"swarm_concurrency = {TOOL_SLOTS}\n")
    assert result["sub_agents_failed"] == 0
    seen = [int((tmp_path / "ws" / f"seen-{i}.txt").read_text()) for i in range(WORKERS)]
    assert max(seen) == TOOL_SLOTS, seen
