"""The streamed events the scripted server writes are json.dumps of the chunk objects, byte for byte.

wire.stream_plan writes each event from text pieces around its delta; the reference below builds every
chunk as a dict and dumps it whole, as the server did before (and as the format is easiest to read).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fake_llm import FakeLLM, Fault, Reply, ToolCall, wire


def compact(value: Any) -> bytes:
    """As the real services write JSON: no blank after "," or ":", non-ASCII as UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def reference_events(turn: wire.Turn, usage_style: str, include_usage: bool) -> list[bytes]:
    reply = turn.reply
    usage_nulls = usage_style == "openai" and include_usage

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        payload: dict[str, Any] = {
            "id": turn.completion_id,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, **extra}],
        }
        if usage_nulls:
            payload["usage"] = None
        return b"data: " + compact(payload) + b"\n\n"

    size = reply.chunk_size
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"reasoning_content": p}) for p in wire.pieces(reply.reasoning, size)]
    events += [chunk({"content": p}) for p in wire.pieces(reply.content, size)]
    relabel = reply.fault is not None and reply.fault.kind == "rewritten_tool_call_ids"
    calls = zip(reply.tool_calls, turn.tool_call_ids, turn.tool_arguments, strict=True)
    for index, (call, call_id, arguments) in enumerate(calls):
        opening = {"index": index, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        events.append(chunk({"tool_calls": [opening]}))
        for number, piece in enumerate(wire.pieces(arguments, size)):
            part: dict[str, Any] = {"index": index, "function": {"arguments": piece}}
            if relabel:
                part["id"] = f"{call_id}-{number + 1}"
            events.append(chunk({"tool_calls": [part]}))
    if reply.fault is not None and reply.fault.kind == "malformed_chunk":
        events.insert(1, wire.MALFORMED_EVENT)
    extra = {"usage": turn.usage} if usage_style == "moonshot" else {}
    events.append(chunk({}, reply.default_finish_reason(), **extra))
    if include_usage:
        last = {"id": turn.completion_id, "object": "chat.completion.chunk", "created": turn.created,
                "model": turn.model, "choices": [], "usage": turn.usage}
        events.append(b"data: " + compact(last) + b"\n\n")
    return [*events, wire.DONE_EVENT]


AWKWARD = 'quote " backslash \\ slash / tab \t newline \n nul \x00 \x1f del \x7f ünï ✓ 😀 \u2028'
REPLIES = [
    Reply(),
    Reply(content="Hello, world!"),
    Reply(content=AWKWARD, reasoning=AWKWARD[::-1], chunk_size=1),
    Reply(content=AWKWARD, chunk_size=1000, finish_reason="length"),
    Reply(tool_calls=[ToolCall("bash", {"command": "true"})]),
    Reply(
        content="two calls",
        tool_calls=[
            ToolCall("bash", {"command": AWKWARD, "n": 1.5, "on": True, "none": None}),
            ToolCall(AWKWARD, '{"raw": ', id=AWKWARD),
        ],
        chunk_size=3,
    ),
    Reply(tool_calls=[ToolCall("a", {"x": 1}), ToolCall("b", "{}")], fault=Fault.rewritten_tool_call_ids()),
    Reply(content="bad", tool_calls=[ToolCall("a", {"x": 1})], fault=Fault.malformed_chunk()),
    Reply(tool_calls=[ToolCall("a", {"x": "yz"})], fault=Fault.truncated_tool_args()),
    Reply(content="u", usage={"prompt_tokens": 9, "cached_tokens": 4, "odd": [1.25, None, AWKWARD]}),
    Reply(content="f", finish_reason=AWKWARD),
]


@pytest.mark.parametrize("reply", REPLIES, ids=range(len(REPLIES)))
@pytest.mark.parametrize("usage_style", wire.USAGE_STYLES)
@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("model", ["kimi-k2.5", AWKWARD])
def test_stream_events_are_json_dumps_of_each_chunk(
    reply: Reply, usage_style: str, include_usage: bool, model: str
) -> None:
    ids = [call.id or f"{call.name}:{n}" for n, call in enumerate(reply.tool_calls)]
    turn = wire.make_turn(reply, model=model, tool_call_ids=ids, prompt_bytes=1234, usage_style=usage_style)
    plan = wire.stream_plan(turn, usage_style, include_usage)
    assert plan.body + plan.closing == reference_events(turn, usage_style, include_usage)
    assert len(plan.closing) == 2 + include_usage  # a stream dropped midway loses the finish and what follows


def test_a_lone_surrogate_fails_the_plan_as_json_dumps_does() -> None:
    turn = wire.make_turn(Reply(content="a\ud800"), model="m", tool_call_ids=[], prompt_bytes=1, usage_style="moonshot")
    with pytest.raises(UnicodeEncodeError):
        reference_events(turn, "moonshot", False)
    with pytest.raises(UnicodeEncodeError):  # before any byte is written: the server answers 500
        wire.stream_plan(turn, "moonshot", False)


def test_answers_are_compact_json_as_the_real_services_send_them() -> None:
    """OpenAI and Moonshot write each chunk, and a whole completion, with no blank after "," or ":"."""
    import http.client

    reply = Reply(content="ünï ✓", reasoning="r", tool_calls=[ToolCall("bash", {"command": "ls -l"})])
    with FakeLLM(require_key=False) as fake:
        fake.script(reply, reply)
        answers = []
        for stream in (True, False):
            connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
            connection.request("POST", "/v1/chat/completions", body=json.dumps(body))
            answers.append(connection.getresponse().read())
            connection.close()
    streamed, whole = answers
    events = [event.removeprefix(b"data: ") for event in streamed.split(b"\n\n") if event]
    assert events[-1] == b"[DONE]" and len(events) > 5
    assert all(event == compact(json.loads(event)) for event in events[:-1])
    assert whole == compact(json.loads(whole))
