"""The core's side of working alongside the agent, in-process against the scripted server over HTTP:
stance notes as the user switches in and out of plan mode, steering and taking it back, the todo list
carried into a conversation, and which tools are offered when."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from kimicode.agent import events as ev
from kimicode.agent.runtime import build_runtime
from kimicode.config import Config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall


def config(fake: FakeLLM, workspace: Path, **settings: object) -> Config:
    return Config(
        api_key="test-key", base_url=fake.base_url, work_dir=workspace, home=workspace.parent / "kimihome",
        retry_base_delay=0.01, max_retries=1, sandbox="off", **settings,  # type: ignore[arg-type]
    )


async def collect(agent, task: str) -> list[ev.Event]:  # type: ignore[no-untyped-def]
    return [event async for event in agent.run(task)]


def test_leaving_plan_mode_mid_turn_is_said_to_the_model(fake_llm: FakeLLM, tmp_path: Path) -> None:
    agent = build_runtime(config(fake_llm, tmp_path, stance="plan")).agent()

    def responder(request: RecordedRequest) -> Reply:
        if len(fake_llm.chat_requests) == 1:
            agent.policy.stance = "ask"  # the user pressed Shift-Tab while the model was answering
            return Reply(tool_calls=[ToolCall("view", {"path": "."})])
        return Reply(content="planned and done")

    fake_llm.responder = responder
    asyncio.run(collect(agent, "do it"))
    first, second = fake_llm.chat_requests
    assert first.messages[-1]["content"].startswith("[Plan mode is on]") and "propose_plan" in first.tool_names()
    assert second.messages[-1]["content"].startswith("[Plan mode is off]") and "propose_plan" not in second.tool_names()


def test_steering_that_never_reached_the_model_can_be_taken_back(fake_llm: FakeLLM, tmp_path: Path) -> None:
    agent = build_runtime(config(fake_llm, tmp_path, max_steps=1)).agent()
    steered = threading.Event()

    def responder(request: RecordedRequest) -> Reply:
        assert steered.wait(30)  # the model answers only once the user has spoken
        return Reply(tool_calls=[ToolCall("view", {"path": "."})])

    fake_llm.responder = responder

    async def scenario() -> list[ev.Event]:
        run = asyncio.ensure_future(collect(agent, "look"))
        assert await asyncio.to_thread(fake_llm.wait_for_requests, 1)  # the model is answering
        agent.steer("one more thing")
        steered.set()
        assert agent.steering == ["one more thing"]
        return await run

    events = asyncio.run(scenario())
    assert events[-1].result.subtype == "error_max_steps"  # type: ignore[union-attr]
    assert not [e for e in events if isinstance(e, ev.Steered)]
    assert agent.take_steering() == ["one more thing"] and agent.steering == []


def test_a_conversation_starts_with_its_todo_list_and_the_task_tools_appear_with_a_task(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    items = [{"content": "ship it", "status": "in_progress"}]
    runtime = build_runtime(config(fake_llm, tmp_path))
    agent = runtime.agent(todo_items=items)
    assert agent.ctx.todo is not None and agent.ctx.todo.items == items
    assert "task_output" not in agent.current_tools() and "todo" in agent.current_tools()
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "sleep 30", "background": True})]),
        Reply(tool_calls=[ToolCall("task_stop", {"task_id": "1"})]),
        Reply(content="stopped"),
    )

    async def scenario() -> list[ev.Event]:
        events = await collect(agent, "start and stop")
        await runtime.ctx.tasks.close()  # type: ignore[union-attr]
        return events

    events = asyncio.run(scenario())
    assert "task_stop" in fake_llm.chat_requests[1].tool_names()
    states = [e.state for e in events if isinstance(e, ev.TaskUpdate)]
    assert states[0] == "running" and states[-1] == "stopped"
    instant = build_runtime(config(fake_llm, tmp_path, mode="instant")).agent()
    assert set(instant.current_tools()) == {"bash", "view", "createfile", "strreplace", "insert", "submit"}
    assert "background" not in instant.tools["bash"].parameters["properties"]
