"""Moonshot's $web_search builtin, round trip through the real CLI.

The CLI is pointed at Moonshot's own host name; the scripted server answers for it as an HTTP proxy (the
requests arrive for http://api.moonshot.ai/v1/..., as they would at the real endpoint), so the endpoint check
runs on the real base URL.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall

BUILTIN = {"type": "builtin_function", "function": {"name": "$web_search"}}
# What Moonshot puts in the call: an id of the search it ran and what it cost. Compact, key order as sent.
ARGUMENTS = '{"search_result":{"search_id":"ws-2f9c"},"usage":{"total_tokens":1834}}'


def _via_moonshot(fake_llm: FakeLLM) -> dict[str, str]:
    proxy = fake_llm.base_url.rsplit("/v1", 1)[0]
    return {"KIMI_BASE_URL": "http://api.moonshot.ai/v1", "HTTP_PROXY": proxy, "http_proxy": proxy,
            "NO_PROXY": "", "no_proxy": ""}


def test_web_search_arguments_go_back_unchanged(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("$web_search", ARGUMENTS)]),
        Reply(content="httpx2 2.16 is the newest.", tool_calls=[ToolCall("submit", {"summary": "httpx2 2.16"})]),
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    proc = run_cli(["-p", "--output-format", "json", "what is the newest httpx2?"], home=tmp_path / "home",
                   cwd=workspace, env_extra=_via_moonshot(fake_llm))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"].startswith("httpx2 2.16")
    first, second = fake_llm.requests[0], fake_llm.requests[1]
    assert first.headers["host"] == "api.moonshot.ai"
    assert BUILTIN in first.body["tools"]
    assert "fetch" in [t["function"]["name"] for t in first.body["tools"]]
    call = next(m for m in second.body["messages"] if m["role"] == "assistant" and m.get("tool_calls"))["tool_calls"][0]
    assert call["function"] == {"name": "$web_search", "arguments": ARGUMENTS}
    result = next(m for m in second.body["messages"] if m["role"] == "tool")
    assert result["tool_call_id"] == call["id"]
    assert result["content"] == ARGUMENTS  # byte for byte, not re-serialised
    assert "refused" not in proc.stderr


def test_other_endpoints_are_not_offered_the_builtin(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Reply(content="ok", tool_calls=[ToolCall("submit", {"summary": "ok"})]))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    proc = run_cli(["-p", "hi"], home=tmp_path / "home", cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert all(tool.get("type") == "function" for tool in fake_llm.requests[0].body["tools"])


def test_a_deny_rule_turns_the_search_off(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[permissions]\ndeny = ["$web_search"]\n')
    fake_llm.script(
        Reply(tool_calls=[ToolCall("$web_search", ARGUMENTS)]),
        Reply(content="no search", tool_calls=[ToolCall("submit", {"summary": "no search"})]),
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    proc = run_cli(["-p", "search"], home=home, cwd=workspace, env_extra=_via_moonshot(fake_llm))
    assert proc.returncode == 0, proc.stderr
    result = next(m for m in fake_llm.requests[1].body["messages"] if m["role"] == "tool")
    assert result["content"] != ARGUMENTS and "refused" in result["content"]
    assert "kimicode: refused $web_search" in proc.stderr
