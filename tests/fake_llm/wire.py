"""The chat-completions wire format as OpenAI and Moonshot (Kimi) send it.

Pure functions from a Reply to the JSON objects / SSE events on the wire; no sockets here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.fake_llm.script import Reply

USAGE_STYLES = ("moonshot", "openai")
DONE_EVENT = b"data: [DONE]\n\n"
KEEP_ALIVE_EVENT = b": keep-alive\n\n"
# A `data:` line a broken proxy might let through: the start of a chunk, cut off.
MALFORMED_EVENT = b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk","choices":[{\n\n'


@dataclass
class Turn:
    """One reply made concrete for one request: ids fixed, faults that alter the content applied."""

    reply: Reply
    model: str
    completion_id: str
    created: int
    tool_call_ids: list[str]
    tool_arguments: list[str]  # per tool call, as sent (possibly cut off)
    usage: dict[str, Any]


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def make_turn(reply: Reply, model: str, tool_call_ids: list[str], prompt_bytes: int, usage_style: str) -> Turn:
    arguments = [call.arguments_text() for call in reply.tool_calls]
    if reply.fault is not None and reply.fault.kind == "truncated_tool_args" and arguments:
        # Output ran out in the middle of the last call's JSON.
        arguments[-1] = cut_json(arguments[-1])
    produced = reply.reasoning + reply.content + "".join(
        call.name + args for call, args in zip(reply.tool_calls, arguments)
    )
    usage = make_usage(prompt_bytes, len(produced), len(reply.reasoning), usage_style, reply.usage)
    return Turn(reply, model, new_completion_id(), int(time.time()), tool_call_ids, arguments, usage)


def cut_json(text: str) -> str:
    cut = text[: max(1, len(text) // 2)]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return cut + "{"  # "1" out of "12" still parses; make sure what arrives cannot be read


def make_usage(
    prompt_bytes: int,
    output_chars: int,
    reasoning_chars: int,
    usage_style: str,
    override: dict[str, Any] | None,
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_bytes // 4,
        "completion_tokens": output_chars // 4,
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if usage_style == "moonshot":
        usage["cached_tokens"] = 0
    usage["prompt_tokens_details"] = {"cached_tokens": 0}
    if usage_style == "openai":
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_chars // 4}
    if override:
        usage.update(override)
        if "total_tokens" not in override:
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if "cached_tokens" in override and "prompt_tokens_details" not in override:
            # Moonshot reports cache hits in both places; keep them in step so either reader agrees.
            usage["prompt_tokens_details"] = {"cached_tokens": override["cached_tokens"]}
    return usage


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + dumps(payload).encode() + b"\n\n"


def dumps(value: Any) -> str:
    """JSON as OpenAI and Moonshot send it: compact (no blank after "," or ":"), non-ASCII as UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json(value: Any) -> str:
    """``dumps(value)``; a string by the very function json.dumps uses for it."""
    if isinstance(value, str):
        return _encode_string(value)
    return dumps(value)


_encode_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) writes a str with


@dataclass
class StreamPlan:
    body: list[bytes]  # role chunk and every delta
    closing: list[bytes]  # finish chunk, usage chunk if any, [DONE]


def stream_plan(turn: Turn, usage_style: str, include_usage: bool) -> StreamPlan:
    """The events of a streamed turn. Each is ``sse`` of a chunk object (id, object, created, model, choices
    of one choice: index, delta, finish_reason, then any extra; with OpenAI's usage nulls a "usage":null
    last), written here from text pieces around each delta: json.dumps of every chunk cost a streamed
    answer more than anything else the server does after parsing the request."""
    reply = turn.reply
    head = (
        f'data: {{"id":{_json(turn.completion_id)},"object":"chat.completion.chunk",'
        f'"created":{turn.created:d},"model":{_json(turn.model)},"choices":[{{"index":0,"delta":'
    )
    usage_null = ',"usage":null' if usage_style == "openai" and include_usage else ""
    middle = ',"finish_reason":null}]' + usage_null + "}\n\n"

    def event(delta: str) -> bytes:
        return (head + delta + middle).encode()

    body = [event('{"role":"assistant","content":""}')]
    body += [event(f'{{"reasoning_content":{_json(p)}}}') for p in pieces(reply.reasoning, reply.chunk_size)]
    body += [event(f'{{"content":{_json(p)}}}') for p in pieces(reply.content, reply.chunk_size)]
    relabel = reply.fault is not None and reply.fault.kind == "rewritten_tool_call_ids"
    for index, (call, call_id, arguments) in enumerate(zip(reply.tool_calls, turn.tool_call_ids, turn.tool_arguments)):
        body.append(event(
            f'{{"tool_calls":[{{"index":{index},"id":{_json(call_id)},"type":"function",'
            f'"function":{{"name":{_json(call.name)},"arguments":""}}}}]}}'
        ))
        for number, piece in enumerate(pieces(arguments, reply.chunk_size)):
            relabelled = f',"id":{_json(f"{call_id}-{number + 1}")}' if relabel else ""
            body.append(event(
                f'{{"tool_calls":[{{"index":{index},"function":{{"arguments":{_json(piece)}}}{relabelled}}}]}}'
            ))
    if reply.fault is not None and reply.fault.kind == "malformed_chunk":
        body.insert(1, MALFORMED_EVENT)

    finish = f'{{}},"finish_reason":{_json(reply.default_finish_reason())}'
    if usage_style == "moonshot":  # Moonshot puts the usage in the final choice
        finish += f',"usage":{_json(turn.usage)}'
    closing = [(head + finish + "}]" + usage_null + "}\n\n").encode()]
    if include_usage:
        closing.append(
            sse(
                {
                    "id": turn.completion_id,
                    "object": "chat.completion.chunk",
                    "created": turn.created,
                    "model": turn.model,
                    "choices": [],
                    "usage": turn.usage,
                }
            )
        )
    closing.append(DONE_EVENT)
    return StreamPlan(body, closing)


def completion_body(turn: Turn, usage_style: str) -> dict[str, Any]:
    reply = turn.reply
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": arguments}}
            for call, call_id, arguments in zip(reply.tool_calls, turn.tool_call_ids, turn.tool_arguments)
        ]
        if usage_style == "openai" and not reply.content:
            message["content"] = None  # OpenAI sends null beside tool calls; Moonshot sends ""
    return {
        "id": turn.completion_id,
        "object": "chat.completion",
        "created": turn.created,
        "model": turn.model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.default_finish_reason()}],
        "usage": turn.usage,
    }


def error_body(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type}}


# How each server lists a model in GET /v1/models: its owned_by, and where it puts the window.
MODELS_STYLES = ("moonshot", "vllm", "sglang", "llama.cpp", "llama-cpp-python", "ollama", "lmstudio", "openai")


def models_body(
    model: str, style: str = "moonshot", window: int | None = None, extra: Sequence[tuple[str, int | None]] = ()
) -> dict[str, Any]:
    """The list a server of ``style`` answers: ``model`` first, then each (id, window) of ``extra``."""
    body = _models_body(model, style, window)
    for other, other_window in extra:
        body["data"].append(_models_body(other, style, other_window)["data"][0])
    return body


def _models_body(model: str, style: str, window: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": model, "object": "model", "created": int(time.time())}
    if style == "moonshot":  # Moonshot's list
        entry.update(owned_by="moonshot", context_length=window or 262144)
    elif style in ("vllm", "sglang"):  # vLLM's and SGLang's ModelCard
        entry.update(owned_by=style, root=model, parent=None, max_model_len=window or 32768)
    elif style == "llama.cpp":  # llama.cpp's server: the trained size in meta
        entry.update(owned_by="llamacpp", meta={"vocab_type": 2, "n_vocab": 262144, "n_ctx_train": window or 32768})
    elif style == "llama-cpp-python":  # measured: {"id", "object", "owned_by": "me", "permissions": []}
        entry = {"id": model, "object": "model", "owned_by": "me", "permissions": []}
    elif style == "ollama":
        entry.update(owned_by="library")
    elif style == "lmstudio":
        entry.update(owned_by="organization_owner")
    elif style == "openai":
        entry.update(owned_by="system")
    else:
        raise ValueError(f"unknown models style {style!r}; known: {', '.join(MODELS_STYLES)}")
    body: dict[str, Any] = {"object": "list", "data": [entry]}
    if style == "llama.cpp":
        body["models"] = [{"name": model, "model": model, "type": "model"}]
    return body
