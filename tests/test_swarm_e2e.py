"""End-to-end: `kimicode -p --mode swarm` against the scripted server; sub-agents really run in parallel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import Fault, FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_script import first_user_text, is_sub_agent, main_requests, steps_done, sub_requests, task_number

GOOD_AGENTS = 20
DOOMED = 99  # this sub-agent's model replies always fail
MODEL_LATENCY = 0.3


def part_task(i: int) -> str:
    return f"TASK-{i:02d}: build part {i}: write out/a{i}.txt with bash and out/b{i}.txt with createfile, then submit."


def orchestrator_plan() -> list[dict[str, str]]:
    agents = [{"role": f"builder {i}", "task": part_task(i)} for i in range(GOOD_AGENTS)]
    agents.append({"role": "doomed", "task": f"TASK-{DOOMED}: this one never gets an answer."})
    return agents


def swarm_responder(request: RecordedRequest) -> Reply:
    done = steps_done(request)
    if not is_sub_agent(request):
        if done == 0:
            return Reply(reasoning="Split it up.", tool_calls=[ToolCall("spawn_agents", {"agents": orchestrator_plan()})])
        return Reply(content="All parts built.")
    i = task_number(request)
    if i == DOOMED:
        return Reply(fault=Fault.http(500, message="sub-agent model is down"))
    if done == 0:
        command = f"mkdir -p out && echo part-{i} > out/a{i}.txt"
        return Reply(delay=MODEL_LATENCY, tool_calls=[ToolCall("bash", {"command": command})])
    if done == 1:
        return Reply(delay=MODEL_LATENCY, tool_calls=[ToolCall("createfile", {"path": f"out/b{i}.txt", "content": f"b{i}\n"})])
    return Reply(delay=MODEL_LATENCY, tool_calls=[ToolCall("submit", {"summary": f"built part {i}"})])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 3\n")
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "proj"
    workspace.mkdir()
    return workspace


def test_twenty_sub_agents_build_in_parallel_and_one_failure_is_contained(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    fake_llm.responder = swarm_responder
    proc = run_cli(
        ["-p", "-y", "--mode", "swarm", "--output-format", "json", "build all parts"],
        home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)

    for i in range(GOOD_AGENTS):
        assert (workspace / "out" / f"a{i}.txt").read_text() == f"part-{i}\n"
        assert (workspace / "out" / f"b{i}.txt").read_text() == f"b{i}\n"
    assert fake_llm.max_in_flight >= GOOD_AGENTS

    # orchestrator: 2 steps; the sub-agents of its step 1 took at most 3 steps (the doomed one 1)
    assert result["mode"] == "swarm" and result["result"] == "All parts built."
    assert result["num_steps"] == 2
    assert result["critical_steps"] == 2 + 3
    assert result["total_steps"] == 2 + GOOD_AGENTS * 3 + 1
    assert result["total_tool_calls"] == 1 + GOOD_AGENTS * 3
    assert result["sub_agents"] == GOOD_AGENTS + 1 and result["sub_agents_failed"] == 1

    # what the orchestrator read back: every result, the failure named with its reason
    report = main_requests(fake_llm.chat_requests)[1].tool_results()[-1]["content"]
    assert f"{GOOD_AGENTS + 1} sub-agents ran ({GOOD_AGENTS} done, 1 failed)" in report
    for i in range(GOOD_AGENTS):
        assert f"built part {i}\n" in report or report.rstrip().endswith(f"built part {i}")
    assert "(doomed): failed" in report and "sub-agent model is down" in report
    assert "gave up after 4 attempts" in report

    # each sub-agent: its own context, its role and then the task verbatim as the user message, no spawning
    subs = sub_requests(fake_llm.chat_requests)
    first_of_3 = next(r for r in subs if steps_done(r) == 0 and task_number(r) == 3)
    assert [m["role"] for m in first_of_3.messages] == ["system", "user"]
    assert first_user_text(first_of_3).startswith("# Your role: builder 3\n")
    assert first_user_text(first_of_3).endswith("\n" + part_task(3))
    assert "spawn_agents" not in first_of_3.tool_names()
    assert {"bash", "view", "createfile", "strreplace", "insert", "submit"} <= set(first_of_3.tool_names())
    assert "spawn_agents" in main_requests(fake_llm.chat_requests)[0].tool_names()


def common_prefix(a: bytes, b: bytes) -> bytes:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[:n]


def test_sub_agents_first_requests_share_every_byte_before_their_user_message(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    """An endpoint that caches prompts by prefix serves all but the task: the same system prompt and tool
    list bytes, and nothing that sets a sub-agent apart before its user message."""
    fake_llm.responder = swarm_responder
    proc = run_cli(["-p", "-y", "--mode", "swarm", "build all the parts"], home=home, cwd=workspace,
                   base_url=fake_llm.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    firsts = {task_number(r): r for r in sub_requests(fake_llm.chat_requests) if steps_done(r) == 0}
    a, b = firsts[3], firsts[11]
    shared = common_prefix(a.raw, b.raw)
    user_message = a.raw.index(b'{"role":"user"')
    assert a.raw.index(b'"tools":') < a.raw.index(b'"messages":')  # the tool list is part of the prefix
    assert len(shared) > user_message, (a.raw[len(shared) - 80:len(shared) + 40], user_message)
    assert a.messages[0] == b.messages[0] and a.body["tools"] == b.body["tools"]
    assert first_user_text(a).endswith(part_task(3)) and first_user_text(b).endswith(part_task(11))


def test_stream_json_carries_sub_agent_events_and_text_mode_ends_with_a_summary(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    def responder(request: RecordedRequest) -> Reply:
        done = steps_done(request)
        if not is_sub_agent(request):
            if done == 0:
                agents = [{"role": "writer", "task": f"TASK-{i}: write w{i}.txt"} for i in range(2)]
                return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
            return Reply(content="written")
        i = task_number(request)
        if done == 0:
            return Reply(tool_calls=[ToolCall("createfile", {"path": f"w{i}.txt", "content": "w"})])
        return Reply(content=f"wrote w{i}.txt")

    fake_llm.responder = responder
    proc = run_cli(
        ["-p", "-y", "--mode", "swarm", "--output-format", "stream-json", "write two files"],
        home=home, cwd=workspace, base_url=fake_llm.base_url,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "spawn_agents" in lines[0]["tools"]
    updates = [line for line in lines if line["type"] == "subagent"]
    finals = {u["agent"]: u for u in updates if u["state"] == "done"}
    assert set(finals) == {"sub-1", "sub-2"}
    assert all(u["role"] == "writer" and u["steps"] == 2 and u["last_tool"].startswith("createfile") for u in finals.values())
    assert {u["state"] for u in updates} >= {"queued", "running", "done"}
    sub_tool_uses = [line for line in lines if line["type"] == "tool_use" and line["agent"].startswith("sub-")]
    assert sorted(u["input"]["path"] for u in sub_tool_uses) == ["w0.txt", "w1.txt"]
    assert lines[-1]["critical_steps"] == 2 + 2

    fake_llm.requests.clear()
    proc = run_cli(["-p", "-y", "--mode", "swarm", "write two files"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    # w0/w1 exist now, so createfile fails; the sub-agents still finish and the run reports its accounting
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "written"
    assert "[sub-1 writer] done after 2 steps" in proc.stderr
    assert "kimicode: 6 steps (4 on the critical path), 3 tool calls, 2 sub-agents" in proc.stderr


def test_modes_decide_the_tool_set(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    seen: dict[str, set[str]] = {}
    for mode in ("instant", "thinking", "agent", "swarm"):
        fake_llm.script(Reply(content="ok"))
        proc = run_cli(["-p", "--mode", mode, "--output-format", "json", "hi"], home=home, cwd=workspace, base_url=fake_llm.base_url)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["mode"] == mode
        seen[mode] = set(fake_llm.chat_requests[-1].tool_names())
    swe = {"bash", "view", "createfile", "strreplace", "insert", "submit"}
    assert seen["instant"] == seen["thinking"] == swe
    assert swe <= seen["agent"] and "spawn_agents" not in seen["agent"]
    assert seen["swarm"] == seen["agent"] | {"spawn_agents"}
