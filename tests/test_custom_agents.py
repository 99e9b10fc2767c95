"""Custom agents through the real CLI and the scripted model server: a Claude Code-format agent with a
`tools: view` allowlist run by the orchestrator (swarm) and as the main agent (`--agent`), and where agents
are read from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kimicode.extensions.agents import ALWAYS_TOOLS
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_script import is_sub_agent, main_requests, steps_done, sub_requests

REVIEWER = """\
---
name: reviewer
description: Reviews code for bugs and says what it found
tools: view
model: kimi-reviewer
---
You are REVIEWER-7. Read the files you are given and list the bugs you find.
"""
PWNED = "pwned.txt"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 1\n")
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "proj"
    (workspace / ".claude" / "agents").mkdir(parents=True)
    (workspace / ".claude" / "agents" / "reviewer.md").write_text(REVIEWER, encoding="utf-8")
    (workspace / "app.py").write_text("print('hi')\n", encoding="utf-8")
    return workspace


def bash_then_submit(request: RecordedRequest) -> Reply:
    """An agent that tries to write a file with bash, then hands its result back."""
    if steps_done(request) == 0:
        return Reply(tool_calls=[ToolCall("bash", {"command": f"echo x > {PWNED}"})])
    return Reply(tool_calls=[ToolCall("submit", {"summary": "reviewed: no bugs"})])


def test_the_orchestrator_spawns_the_named_agent_with_only_its_tools(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    def responder(request: RecordedRequest) -> Reply:
        if is_sub_agent(request):
            return bash_then_submit(request)
        if steps_done(request) == 0:
            task = {"role": "review", "task": "Review app.py.", "agent": "reviewer"}
            return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": [task]})])
        return Reply(content="Reviewed.")

    fake_llm.responder = responder
    proc = run_cli(
        ["-p", "-y", "--trust", "--mode", "swarm", "--output-format", "json", "review the code"],
        home=home, cwd=workspace, base_url=fake_llm.base_url,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)

    orchestrator = main_requests(fake_llm.chat_requests)
    assert "- reviewer — Reviews code for bugs and says what it found" in orchestrator[0].messages[0]["content"]
    assert "REVIEWER-7" not in orchestrator[0].messages[0]["content"]  # its instructions are its own

    subs = sub_requests(fake_llm.chat_requests)
    assert len(subs) == 2
    assert set(subs[0].tool_names()) == {"view", *ALWAYS_TOOLS}
    assert "REVIEWER-7" in subs[0].messages[0]["content"]
    assert subs[0].body["model"] == "kimi-reviewer" and orchestrator[0].body["model"] != "kimi-reviewer"
    refusal = subs[1].tool_results()[-1]["content"]
    assert "Unknown tool 'bash'" in refusal
    assert not (workspace / PWNED).exists()

    report = orchestrator[1].tool_results()[-1]["content"]
    assert "reviewed: no bugs" in report
    # budgets and critical steps count it as any sub-agent: 2 orchestrator steps + its 2
    assert result["sub_agents"] == 1 and result["critical_steps"] == 4 and result["total_tool_calls"] == 2


def test_an_unknown_named_agent_starts_nothing_and_names_the_known(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    def responder(request: RecordedRequest) -> Reply:
        if is_sub_agent(request):
            return Reply(tool_calls=[ToolCall("submit", {"summary": "ran"})])
        if steps_done(request) == 0:
            task = {"role": "r", "task": "Do it.", "agent": "nobody"}
            return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": [task]})])
        return Reply(content="done")

    fake_llm.responder = responder
    proc = run_cli(["-p", "-y", "--trust", "--mode", "swarm", "go"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert not sub_requests(fake_llm.chat_requests)
    said = main_requests(fake_llm.chat_requests)[1].tool_results()[-1]["content"]
    assert "no named agent 'nobody' (known: reviewer)" in said


def test_agent_flag_runs_it_as_the_main_agent(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.responder = bash_then_submit
    proc = run_cli(["--agent", "reviewer", "--trust", "-y", "-p", "review app.py"],
                   home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    first, second = fake_llm.chat_requests[:2]
    assert set(first.tool_names()) == {"view", *ALWAYS_TOOLS}
    assert "REVIEWER-7" in first.messages[0]["content"]
    assert first.body["model"] == "kimi-reviewer"
    assert "Unknown tool 'bash'" in second.tool_results()[-1]["content"]
    assert not (workspace / PWNED).exists()


def test_project_agents_wait_for_trust_and_an_unknown_name_is_one_line(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    userhome = home.parent / "userhome"  # HOME of the CLI runs (tests/clirun.py)
    (userhome / ".codex" / "agents").mkdir(parents=True)
    (userhome / ".codex" / "agents" / "planner.toml").write_text(
        'name = "planner"\ndescription = "Plans work"\ninstructions = "Plan."\ntools = ["Read", "Grep"]\n'
    )
    proc = run_cli(["--agent", "reviewer", "-p", "x"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "kimicode: no agent named 'reviewer' (known: planner); the project's agent of that name loads once the "
        "folder is trusted (--trust, kimicode trust)"
    )
    assert not fake_llm.chat_requests

    fake_llm.responder = lambda request: Reply(content="planned")
    proc = run_cli(["--agent", "planner", "-p", "x"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert set(fake_llm.chat_requests[0].tool_names()) == {"view", *ALWAYS_TOOLS}


def test_agents_command_lists_each_agent_with_its_source(spawn, home: Path, workspace: Path) -> None:
    user_agents = home.parent / "userhome" / ".claude" / "agents"
    user_agents.mkdir(parents=True)
    (user_agents / "writer.md").write_text("---\ndescription: Writes docs\ntools: Read, Write\n---\nWrite.\n")
    (user_agents / "broken.md").write_text("no front matter\n")
    repl = spawn("--trust")
    repl.wait_prompt()
    repl.send_line("/agents")
    start = len(repl.transcript)
    repl.expect("invalid:")
    repl.wait_prompt()
    out = repl.transcript[start:]
    assert re.search(r"reviewer\s+project:\.claude/agents · view · model kimi-reviewer", out), out
    assert re.search(r"writer\s+user:~/\.claude/agents · view, createfile", out), out
    assert "broken.md" in out and "Traceback" not in repl.transcript


def test_a_read_only_stance_keeps_only_tools_that_change_nothing(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    (home / "agents").mkdir()
    (home / "agents" / "auditor.md").write_text("---\ndescription: Audits\npermissionMode: plan\n---\nAudit.\n")
    (home / "agents" / "loose.md").write_text("---\ndescription: Loose\npermissionMode: yolo-please\n---\n")
    fake_llm.responder = bash_then_submit
    proc = run_cli(["--agent", "auditor", "-y", "-p", "audit"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    offered = set(fake_llm.chat_requests[0].tool_names())
    assert {"view", "submit"} <= offered and not offered & {"bash", "createfile", "strreplace", "insert"}
    assert not (workspace / PWNED).exists()
    proc = run_cli(["--agent", "loose", "-p", "x"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 2  # an unknown stance makes the file invalid, never a looser agent
    assert proc.stderr.strip() == "kimicode: no agent named 'loose' (known: auditor)"


def test_claude_code_tool_names_mean_kimicode_tools(tmp_path: Path) -> None:
    from kimicode.extensions.agents import load_agent

    path = tmp_path / "a.md"
    path.write_text("---\ndescription: d\ntools: Bash(git *), Edit, MultiEdit, Grep, Glob, WebFetch, Task, mcp__gh__*\n---\n")
    agent = load_agent(path, "test")
    assert agent.tools == ("bash", "strreplace", "insert", "view", "fetch", "mcp__gh__*")
    assert agent.name == "a" and agent.allows("mcp__gh__issues") and not agent.allows("createfile")
