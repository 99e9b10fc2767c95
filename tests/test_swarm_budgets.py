"""Swarm budgets, waves and cancellation, driven in-process against the scripted server over HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from kimicode.agent import events as ev
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.runtime import build_runtime
from kimicode.agent.swarm_accounting import annotate_result
from kimicode.config import Config
from kimicode.tools.base import ToolError
from kimicode.tools.spawn_agents import parse_agents
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_script import is_sub_agent, main_requests, steps_done, sub_requests, task_number


async def approve_all(request: ev.ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(True)


def swarm_config(fake: FakeLLM, workspace: Path, **settings: Any) -> Config:
    return Config(
        api_key="test-key",
        base_url=fake.base_url,
        mode="swarm",
        work_dir=workspace,
        home=workspace.parent / "kimihome",
        yolo=True,
        retry_base_delay=0.01,
        max_retries=1,
        **settings,
    )


async def run_to_end(config: Config, task: str) -> tuple[ev.RunResult, list[ev.Event]]:
    agent = build_runtime(config).agent(approve_all)
    events: list[ev.Event] = []
    async for event in agent.run(task):
        events.append(event)
        if isinstance(event, ev.Done):
            return event.result, events
    raise AssertionError("the run ended without Done")


def spawn(agents: list[dict[str, str]]) -> Reply:
    return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])


def report_of(fake: FakeLLM, orchestrator_turn: int) -> str:
    """The spawn_agents result the orchestrator read at the start of this turn (0-based)."""
    return main_requests(fake.chat_requests)[orchestrator_turn].tool_results()[-1]["content"]


def test_150_requested_are_clamped_to_100_with_a_message(fake_llm: FakeLLM, tmp_path: Path) -> None:
    def responder(request: RecordedRequest) -> Reply:
        if is_sub_agent(request):
            return Reply(content=f"answer {task_number(request)}")
        if steps_done(request) == 0:
            return spawn([{"role": "counter", "task": f"TASK-{i}: count"} for i in range(150)])
        return Reply(content="done")

    fake_llm.responder = responder
    result, events = asyncio.run(run_to_end(swarm_config(fake_llm, tmp_path), "count everything"))
    assert result.subtype == "success"
    report = report_of(fake_llm, 1)
    assert report.startswith("Note: you asked for 150 sub-agents but at most 100 may be alive at once")
    assert "the other 50 were not run" in report
    assert sorted({task_number(r) for r in sub_requests(fake_llm.chat_requests)}) == list(range(100))
    done = [e for e in events if isinstance(e, ev.SubAgentUpdate) and e.state == "done"]
    assert len(done) == 100
    assert result.extra["sub_agents"] == 100


def test_tool_call_budget_stops_a_runaway_swarm(fake_llm: FakeLLM, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"

    def responder(request: RecordedRequest) -> Reply:
        if is_sub_agent(request):  # never submits: runs a new command every step
            i, step = task_number(request), steps_done(request)
            return Reply(tool_calls=[ToolCall("bash", {"command": f"echo {i}-{step} >> {log}"})])
        turn = steps_done(request)
        if turn == 0:
            return spawn([{"role": "looper", "task": f"TASK-{i}: loop"} for i in range(5)])
        if turn == 1:  # a second wave after the budget is gone
            return spawn([{"role": "late", "task": "TASK-9: too late"}])
        return Reply(content="stopped cleanly")

    fake_llm.responder = responder
    config = swarm_config(fake_llm, tmp_path, swarm_max_tool_calls=30, swarm_max_steps=30)
    result, events = asyncio.run(run_to_end(config, "loop forever"))

    assert result.subtype == "success" and result.result == "stopped cleanly"
    assert len(log.read_text().splitlines()) == 30  # exactly the budget ran, not one call more
    first_wave = report_of(fake_llm, 1)
    assert "5 sub-agents ran (5 failed)" in first_wave
    assert first_wave.count("the swarm's budget of 30 tool calls is used up") == 5
    second_wave = report_of(fake_llm, 2)
    assert second_wave.startswith("No sub-agents started: the swarm's budget of 30 tool calls is used up")
    assert not any(task_number(r) == 9 for r in sub_requests(fake_llm.chat_requests))
    failed = {e.agent for e in events if isinstance(e, ev.SubAgentUpdate) and e.state == "failed"}
    assert failed == {f"sub-{i}" for i in range(1, 6)}
    assert result.extra["total_tool_calls"] == 30 + 2  # the sub-agents' calls and two spawn_agents calls


def test_critical_steps_over_two_waves(fake_llm: FakeLLM, tmp_path: Path) -> None:
    # wave 1 (orchestrator step 1): sub-agents of 2 and 1 steps; wave 2 (step 2): 4, 1 and 3 steps.
    lengths = {0: 2, 1: 1, 2: 4, 3: 1, 4: 3}

    def responder(request: RecordedRequest) -> Reply:
        if is_sub_agent(request):
            i, done = task_number(request), steps_done(request)
            if done + 1 < lengths[i]:
                return Reply(tool_calls=[ToolCall("view", {"path": "."})])
            return Reply(content=f"sub {i} finished")
        turn = steps_done(request)
        if turn == 0:
            return spawn([{"role": "a", "task": f"TASK-{i}: go"} for i in (0, 1)])
        if turn == 1:
            return spawn([{"role": "b", "task": f"TASK-{i}: go"} for i in (2, 3, 4)])
        if turn == 2:
            return Reply(tool_calls=[ToolCall("view", {"path": "."})])
        return Reply(content="merged")

    fake_llm.responder = responder
    result, _ = asyncio.run(run_to_end(swarm_config(fake_llm, tmp_path), "two waves"))
    assert result.subtype == "success" and result.num_steps == 4
    # Σ_t (1 + max_i S_sub,i(t)) = (1+2) + (1+4) + (1+0) + (1+0)
    assert result.extra["critical_steps"] == 10
    assert result.extra["total_steps"] == 4 + sum(lengths.values())
    assert result.extra["total_tool_calls"] == 3 + sum(n - 1 for n in lengths.values())


def test_cancelling_the_run_cancels_every_sub_agent(fake_llm: FakeLLM, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()

    def responder(request: RecordedRequest) -> Reply:
        if is_sub_agent(request):
            i = task_number(request)
            return Reply(tool_calls=[ToolCall("bash", {"command": f"echo $$ > {pids}/{i}; sleep 60; touch {tmp_path}/late-{i}"})])
        return spawn([{"role": "sleeper", "task": f"TASK-{i}: sleep"} for i in range(5)])

    fake_llm.responder = responder

    async def scenario() -> list[int]:
        # Unsandboxed: the shells' $$ must be host PIDs for the check below (tests/security covers the sandbox).
        runtime = build_runtime(swarm_config(fake_llm, tmp_path, sandbox="off"))
        run = runtime.agent(approve_all).run("sleep in parallel")

        async def consume() -> None:
            async for _ in run:
                pass

        consumer = asyncio.create_task(consume())
        deadline = time.monotonic() + 30
        while len(list(pids.iterdir())) < 5 or any(not p.read_text().strip() for p in pids.iterdir()):
            assert time.monotonic() < deadline, "the sub-agents' commands never started"
            await asyncio.sleep(0.05)
        consumer.cancel()  # what Ctrl-C does to a headless run
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await run.aclose()
        assert runtime.swarm is not None and runtime.swarm._alive == 0
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == []
        return [int(p.read_text()) for p in pids.iterdir()]

    pids_seen = asyncio.run(scenario())
    # Killed at cancellation; the child watcher reaps each one a moment later (a loaded machine: longer).
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in pids_seen if _exists(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive == []
    assert not list(tmp_path.glob("late-*"))


def _exists(pid: int) -> bool:
    """True while the process exists and is not a zombie (a zombie has ended; only its exit status is left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_spawn_request_validation() -> None:
    assert parse_agents([{"role": "r", "task": "t"}, {"task": "u"}]) == [("r", "t"), ("worker", "u")]
    for bad, why in [([], "non-empty"), ([{"role": "r"}], "agents[0] has no 'task'"), (["x"], "agents[0] must be")]:
        with pytest.raises(ToolError, match=why.replace("[", r"\[").replace("]", r"\]")):
            parse_agents(bad)


def test_single_agent_runs_report_their_own_steps_as_the_critical_path() -> None:
    result = ev.RunResult("success", "ok", submitted=True, num_steps=7, usage={"tool_calls": 9})
    annotate_result(result)
    assert result.extra == {"critical_steps": 7, "total_steps": 7, "total_tool_calls": 9}
