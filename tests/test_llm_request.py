"""The model client's pure parts, without a server: the request body and its bytes, a streamed reply read
from its chunks, the back-off between attempts."""

from __future__ import annotations

import copy
import json

from kimicode.config import Config
from kimicode.llm.endpoint import EndpointProfile
from kimicode.llm.profiles import profile_for
from kimicode.llm.reply import Reply, ToolCallRequest, absorb, gather_calls
from kimicode.llm.request import MEDIA_NOT_SENT, build_body, encode, encode_unstreamed, optional_fields
from kimicode.llm.retry import backoff

BASE_URL = "http://127.0.0.1:9/v1"
HISTORY = [
    {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:x"}}]},
    {"role": "assistant", "content": "", "reasoning_content": "look", "tool_calls": []},
]


def test_a_body_for_a_text_only_strict_endpoint_leaves_the_history_as_it_was() -> None:
    endpoint = EndpointProfile(BASE_URL, "other")
    endpoint.reject("reasoning_content")
    endpoint.refuse_images("kimi-k2.5")
    history = copy.deepcopy(HISTORY)
    body = build_body(Config(base_url=BASE_URL), profile_for("kimi-k2.5"), endpoint, history, [], {"thinking": True})
    assert body["messages"][0]["content"][1] == {"type": "text", "text": MEDIA_NOT_SENT.format(kind="image")}
    assert "reasoning_content" not in body["messages"][1]
    assert history == HISTORY  # the session keeps its images and reasoning for an endpoint that takes them


def test_the_bytes_are_compact_utf8_and_the_unstreamed_form_differs_only_in_streaming() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "café ✓"}], "stream": True,
            "stream_options": {"include_usage": True}}
    assert encode(body) == '{"model":"m","messages":[{"role":"user","content":"café ✓"}],"stream":true,'.encode() + \
        b'"stream_options":{"include_usage":true}}'
    plain = json.loads(encode_unstreamed(body))
    assert plain == {"model": "m", "messages": body["messages"], "stream": False}


def test_tool_call_deltas_gather_by_index_and_a_call_without_an_id_gets_one() -> None:
    reply, calls = Reply(), {}
    thoughts: list[str] = []
    chunks = [
        {"choices": [{"delta": {"reasoning": "hm"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"name": "view", "arguments": '{"pa'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "functions.bash:0", "function": {"name": "bash"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": 'th": "a"}'}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 7, "cached_tokens": 3}},
    ]
    for chunk in chunks:
        absorb(chunk, reply, calls, None, thoughts.append)
    gather_calls(reply, calls)
    assert reply.tool_calls == [
        ToolCallRequest("functions.bash:0", "bash", ""),
        ToolCallRequest("call_1", "view", '{"path": "a"}'),
    ]
    assert thoughts == ["hm"] and reply.reasoning == "hm" and reply.finish_reason == "tool_calls"
    assert (reply.usage.prompt_tokens, reply.usage.cached_tokens) == (7, 3)


def test_the_back_off_follows_retry_after_up_to_two_minutes_and_else_doubles_within_its_jitter() -> None:
    assert backoff(1.0, 0, 5.0) == 5.0
    assert backoff(1.0, 0, 900.0) == 120.0
    assert backoff(1.0, 0, -3.0) == 0.0
    assert 2.0 <= backoff(1.0, 2, None) <= 4.0
    assert 15.0 <= backoff(1.0, 10, None) <= 30.0


def test_the_optional_fields_sent_name_reasoning_only_when_a_message_carries_it() -> None:
    plain = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}] * 50
    body = {"model": "m", "messages": plain, "temperature": 0.6}
    assert optional_fields(body) == ["temperature"]
    late = [*plain, {"role": "assistant", "content": "", "reasoning_content": "why"}]
    assert optional_fields({**body, "messages": late}) == ["temperature", "reasoning_content"]
    assert optional_fields({"model": "m"}) == []


def test_the_bytes_are_those_of_json_dumps_for_every_kind_of_value_a_request_carries() -> None:
    # The encoder is made once and skips the circular-reference check: the bytes must not change for it.
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": 'quotes " and \\ back\\slash, tabs\t, bells\x07, nul\x00, CR\r LF\n'},
            {"role": "user", "content": [{"type": "text", "text": "naïve 日本 😀 \u2028 \x7f"}]},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
             "function": {"name": "bash", "arguments": '{"command": "echo \\"hi\\""}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
        "stream": True,
        "tools": [{"type": "function", "function": {"name": "t", "parameters": {
            "type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 2**70}},
            "enum": (True, False, None, 0.5, 1e16, -0.0)}}}],
        "temperature": 1.0,
        "max_tokens": 32768,
    }
    reference = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert encode(body) == reference
    assert encode(body) == reference  # (and again: the encoder is shared between requests)
