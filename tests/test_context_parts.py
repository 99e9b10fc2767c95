"""/context's parts add up to the estimate the loop compacts on, before and after the endpoint counts."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from pathlib import Path

from kimicode.agent import events as ev
from kimicode.agent.context import should_compact
from kimicode.agent.context_parts import IMAGES, INSTRUCTIONS, MCP_TOOLS, TOOLS, context_parts
from kimicode.agent.runtime import build_runtime
from kimicode.config import Config
from kimicode.frontends.repl.context_view import ContextWatch
from tests.fake_llm import FakeLLM, Reply


def config(fake: FakeLLM, workspace: Path) -> Config:
    return Config(
        api_key="test-key", base_url=fake.base_url, work_dir=workspace, home=workspace.parent / "kimihome",
        retry_base_delay=0.01, max_retries=1, sandbox="off",
    )


def png_data_url(width: int, height: int) -> str:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_parts_add_up_to_the_loops_estimate_before_and_after_the_endpoint_counts(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "AGENTS.md").write_text("Always run the tests with make check.\n" * 40)
    agent = build_runtime(config(fake_llm, workspace)).agent()
    agent.messages.append(
        {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": png_data_url(56, 56)}}]}
    )
    agent._meter.restart(agent.messages)
    before = context_parts(agent, workspace)
    assert not before.measured
    assert sum(tokens for _name, tokens in before.parts) == before.total == agent.context_tokens > 0
    named = dict(before.parts)
    assert named[INSTRUCTIONS] >= len("Always run the tests with make check.\n" * 40) // 4 - 1
    assert named[IMAGES] > 0
    assert dict(before.outside)[TOOLS] > 0 and dict(before.outside)[MCP_TOOLS] == 0

    fake_llm.script(Reply(content="ok", usage={"prompt_tokens": 210_000, "completion_tokens": 10}))
    events = asyncio.run(_collect(agent, "hello"))
    after = context_parts(agent, workspace)
    assert after.measured and not after.outside
    assert sum(tokens for _name, tokens in after.parts) == after.total == agent.context_tokens
    assert after.total >= 210_010
    assert dict(after.parts)[TOOLS] > 0
    # what /context says is what decides compaction
    assert should_compact(after.total, after.window, agent.compact_threshold) == should_compact(
        agent.context_tokens, agent.client.profile.context_window, agent.compact_threshold
    )
    # 210,010 of 262,144 is past 80%: the notice comes once, then not again until it falls back below
    usages = [e for e in events if isinstance(e, ev.Usage)]
    watch = ContextWatch()
    first = watch.notice(usages[-1])
    assert first is not None and "/compact" in first
    assert watch.notice(usages[-1]) is None
    assert watch.notice(ev.Usage(0, 0, 0, 0.0, 0.0, 1_000, 262_144)) is None  # compacted: below again
    assert watch.notice(usages[-1]) is not None


async def _collect(agent, task: str) -> list[ev.Event]:  # type: ignore[no-untyped-def]
    return [event async for event in agent.run(task)]
