"""Token estimates and compaction of the history."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from kimicode.agent.context import (
    COMPACTION_PROMPT,
    DEFAULT_COMPACT_THRESHOLD,
    IMAGE_PATCH_PIXELS,
    IMAGE_TOKEN_CAP,
    UNKNOWN_MEDIA_TOKENS,
    CompactionError,
    compact,
    estimate_tokens,
    should_compact,
)
from kimicode.llm.messages import SUMMARY_PREFIX, Image, text_part, tool_messages, user_message
from kimicode.session.store import SessionStore


def _image(fmt: str, size: tuple[int, int]) -> Image:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", size, (200, 30, 30)).save(buffer, fmt)
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}[fmt]
    return Image(mime=mime, data=buffer.getvalue())


def test_estimate_is_about_a_quarter_of_the_bytes() -> None:
    tokens = estimate_tokens([{"role": "user", "content": "a" * 4000}])
    assert 1000 <= tokens <= 1020
    assert estimate_tokens([{"role": "user", "content": "a" * 8000}]) > tokens


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_images_count_by_pixels_not_base64_size(fmt: str) -> None:
    text_only = estimate_tokens([{"role": "user", "content": [text_part("look")]}])
    patch = IMAGE_PATCH_PIXELS
    small = estimate_tokens([user_message("look", [_image(fmt, (10 * patch, 5 * patch))])]) - text_only
    assert small == 10 * 5  # one token per patch
    started = estimate_tokens([user_message("look", [_image(fmt, (10 * patch + 1, 5 * patch))])]) - text_only
    assert started == 11 * 5  # a patch begun counts whole
    huge = estimate_tokens([user_message("look", [_image(fmt, (5000, 5000))])]) - text_only
    assert huge == IMAGE_TOKEN_CAP < (5000 // patch) ** 2  # capped


def test_unreadable_images_get_a_fixed_budget() -> None:
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
    assert estimate_tokens([message]) - estimate_tokens([{"role": "user", "content": []}]) == UNKNOWN_MEDIA_TOKENS


def test_should_compact() -> None:
    at = int(100_000 * DEFAULT_COMPACT_THRESHOLD)
    assert not should_compact(at - 1, 100_000)
    assert should_compact(at, 100_000)
    assert should_compact(60_000, 100_000, threshold=0.5)
    assert not should_compact(10, 0)


def _conversation(steps: int) -> list[dict]:
    messages: list[dict] = [
        {"role": "system", "content": "You are kimicode."},
        {"role": "user", "content": "Fix the failing date parser in utils/dates.py"},
    ]
    for step in range(steps):
        calls = [
            {
                "id": f"call_{step}_{k}",
                "type": "function",
                "function": {"name": "bash", "arguments": json.dumps({"command": f"pytest -k case{step}{k}"})},
            }
            for k in range(2)
        ]
        messages.append(
            {"role": "assistant", "content": f"step {step}", "tool_calls": calls, "reasoning_content": "thinking " * 20}
        )
        for k in range(2):
            messages.append({"role": "tool", "tool_call_id": f"call_{step}_{k}", "content": f"out {step}{k} " * 300})
        if step % 5 == 4:
            # A tool that returned an image: its picture rides in a user message right after the result.
            messages[-1:] = tool_messages(f"call_{step}_1", "screenshot", [_image("PNG", (56, 56))])
    messages.append({"role": "assistant", "content": "All tests pass now."})
    return messages


def _assert_valid_tool_pairing(messages: list[dict]) -> None:
    """Every call is answered right after its assistant message, and every result has its call."""
    open_calls: set[str] = set()
    for message in messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] in open_calls, "tool result without its call"
            open_calls.remove(message["tool_call_id"])
            continue
        if message["role"] == "user" and isinstance(message["content"], list):
            continue  # image carrier
        assert not open_calls, f"calls left unanswered: {open_calls}"
        if message.get("tool_calls"):
            open_calls = {c["id"] for c in message["tool_calls"]}
    assert not open_calls


class FakeSummarizer:
    def __init__(self, reply: str = "- fixed utils/dates.py\n- tests pass") -> None:
        self.requests: list[list[dict]] = []
        self.reply = reply

    async def __call__(self, request: list[dict]) -> str:
        self.requests.append(request)
        return self.reply


@pytest.mark.parametrize("keep_recent_tokens", [1, 500, 1200, 2000, 3333, 5000])
def test_compaction_keeps_pairs_summary_and_recent_steps(keep_recent_tokens: int) -> None:
    history = _conversation(steps=20)
    summarizer = FakeSummarizer()
    result = asyncio.run(compact(history, summarizer, keep_recent_tokens))

    assert result.messages[0] == history[0]
    assert result.messages[1] == {"role": "user", "content": SUMMARY_PREFIX + summarizer.reply}
    assert result.summary == summarizer.reply
    tail = result.messages[2:]
    assert tail == history[len(history) - len(tail):]  # the recent steps, verbatim
    assert result.replaced_count == len(history) - 1 - len(tail)
    assert tail[0]["role"] != "tool"
    _assert_valid_tool_pairing(result.messages)
    assert result.tokens_after < result.tokens_before
    assert result.tokens_before == estimate_tokens(history)
    assert result.tokens_after == estimate_tokens(result.messages)
    if keep_recent_tokens >= 2000:
        assert estimate_tokens(tail) <= keep_recent_tokens
        assert len(tail) > 3

    # The model saw the old history as a transcript with the instructions, not the kept tail.
    (request,) = summarizer.requests
    prompt = request[-1]["content"]
    assert "Fix the failing date parser in utils/dates.py" in prompt
    assert "ASSISTANT CALLED bash" in prompt and "pytest -k case00" in prompt
    assert prompt.endswith(COMPACTION_PROMPT)
    assert "All tests pass now." not in prompt


def test_nothing_old_enough_means_no_change() -> None:
    history = _conversation(steps=1)
    summarizer = FakeSummarizer()
    result = asyncio.run(compact(history, summarizer, keep_recent_tokens=10**6))
    assert result.messages == history and result.replaced_count == 0 and summarizer.requests == []


def test_empty_summary_is_an_error() -> None:
    with pytest.raises(CompactionError, match="empty summary"):
        asyncio.run(compact(_conversation(steps=10), FakeSummarizer(reply="  "), keep_recent_tokens=500))


def test_a_resumed_session_replays_to_the_compacted_history(tmp_path: Path) -> None:
    history = _conversation(steps=12)
    session = SessionStore(tmp_path).create(tmp_path, "kimi-k2.5", "agent")
    for message in history:
        session.append_message(message)
    result = asyncio.run(compact(history, FakeSummarizer(), keep_recent_tokens=1500))
    session.append_compaction(result.summary, result.replaced_count)
    follow_up = {"role": "user", "content": "now add a test"}
    session.append_message(follow_up)
    loaded = session.load_messages()
    assert loaded.warnings == []
    assert loaded.messages == [*result.messages, follow_up]
