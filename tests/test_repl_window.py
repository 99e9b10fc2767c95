"""Seeing what is there, in the real interactive kimicode (pty) against the scripted model server: /model's
list of the endpoint's models, /context's parts of the window and the notice before compaction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kimicode.agent.accounting import approx_chars
from kimicode.session.store import SessionStore
from tests.fake_llm import FakeLLM, Reply
from tests.replpty import Repl

pytestmark = pytest.mark.quick_retries


def test_model_lists_the_endpoints_models_and_refuses_an_unknown_one(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.extra_models = [("moonshot-v1-8k", 8192), ("kimi-k2-thinking", None)]
    fake_llm.script(Reply(content="from the other model"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/model")
    listing = repl.expect("switch with /model NAME")
    assert "* kimi-k2.5" in listing and "262,144 tokens" in listing
    assert "moonshot-v1-8k" in listing and "8,192 tokens" in listing and "3 models" in listing
    repl.wait_prompt()
    repl.send_line("/model no-such-model")
    refused = repl.expect("it serves")
    assert "'no-such-model'" in refused and "/model lists the 3" in refused
    repl.wait_prompt()
    repl.send_line("/model moonshot-v1-8k")
    repl.expect("model: moonshot-v1-8k (context 8,192 tokens)")
    repl.wait_prompt()
    repl.send_line("hello")
    repl.expect("from the other model")
    assert [r.body["model"] for r in fake_llm.chat_requests] == ["moonshot-v1-8k"]
    # the list was asked for once, however often /model was used
    assert sum(1 for r in fake_llm.all_requests if r.path == "/v1/models") <= 2


def test_context_shows_the_window_by_part_adding_up_to_the_loops_estimate(
    spawn, fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    fake_llm.script(Reply(content="ok", usage={"prompt_tokens": 210_000, "completion_tokens": 10}))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("hello")
    seen = repl.expect("/compact now with a focus")
    assert "context is 80% full" in seen
    repl.wait_prompt()
    repl.send_line("/context")
    out = repl.expect("does it now")
    # the loop's estimate: the endpoint's count, plus the reply added to the history since
    (info,) = SessionStore(home).list(workspace)
    reply = SessionStore(home).open(info.id, workspace).transcript()[-1]
    expected = 210_010 + approx_chars(reply) // 4
    assert f"{expected:,} of 262,144 tokens" in out
    rows = dict(re.findall(r"^\s{4}(\S[\w .]*?)\s{2,}([\d,]+)\s", out, re.MULTILINE))
    for part in ("system prompt", "skills catalogue", "AGENTS.md", "tool schemas", "MCP tools", "history", "images"):
        assert part in rows, out
    assert int(rows["total"].replace(",", "")) == expected
    assert sum(int(v.replace(",", "")) for k, v in rows.items() if k != "total") == expected


def test_model_on_an_endpoint_without_a_list_is_taken_with_a_note(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.lists_models = False
    fake_llm.script(Reply(content="unchecked model answers"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/model")
    repl.expect("the endpoint lists no models")
    repl.wait_prompt()
    repl.send_line("/model my-own-model")
    repl.expect("not checked: the endpoint lists no models")
    repl.wait_prompt()
    repl.send_line("hello")
    repl.expect("unchecked model answers")
    assert [r.body["model"] for r in fake_llm.chat_requests] == ["my-own-model"]
