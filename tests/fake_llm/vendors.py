"""How real OpenAI-compatible servers answer three situations kimicode must recognise: a prompt over the
context window, a request field the server does not take, and an image sent to a model without vision. Bodies as the servers send them, with the
source each was taken from; the scripted server replays them and the tests check the real client.

Sources (read 2026-12): the servers' own code where it is public, otherwise bug reports quoting the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# ---- context overflow ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverflowAnswer:
    status: int  # HTTP status of the answer (200 = the error arrives inside the stream)
    body: Any  # the JSON body (or, for status 200, the SSE error event's data)
    window: int | None  # the window the body states, when it states one
    # How a streamed request is answered: "same" (the status and body above), "empty" (a 200 stream with
    # no event at all: the error only shows when asked without streaming), "event" (a 200 stream whose
    # only event is the error).
    streamed: str = "same"


OVERFLOW: dict[str, OverflowAnswer] = {
    # Moonshot platform docs (error codes) and the wording kimicode already met.
    "moonshot": OverflowAnswer(
        400,
        {
            "error": {
                "message": "Invalid request: Your request exceeded model token limit: 262144 (requested: 300000)",
                "type": "invalid_request_error",
            }
        },
        262144,
    ),
    # OpenAI chat completions; quoted with its code in mckaywrigley/chatbot-ui#102.
    "openai": OverflowAnswer(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, your messages resulted "
                "in 130412 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        128000,
    ),
    # OpenAI's newer wording (same code), as clients such as opencode test for it.
    "openai-window": OverflowAnswer(
        400,
        {
            "error": {
                "message": "Your input exceeds the context window of this model. Please adjust your input and try again.",
                "type": "invalid_request_error",
                "param": "input",
                "code": "context_length_exceeded",
            }
        },
        None,
    ),
    # vLLM's OpenAI server (serving_engine), nested error object, prompt plus max_tokens over the window.
    "vllm": OverflowAnswer(
        400,
        {
            "error": {
                "message": "'max_tokens' or 'max_completion_tokens' is too large: 32768. This model's maximum "
                "context length is 32768 tokens and your request has 3059 input tokens (32768 > 32768 - 3059). None",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        },
        32768,
    ),
    # vLLM, the prompt alone over the window (serving_engine._validate_input).
    "vllm-input": OverflowAnswer(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 8192 tokens. However, your request has 9216 input "
                "tokens. Please reduce the length of the input messages.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        },
        8192,
    ),
    # vLLM before the nested form: a top-level ErrorResponse, the prompt alone too long.
    "vllm-legacy": OverflowAnswer(
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you requested 5120 tokens "
            "(4096 in the messages, 1024 in the completion). Please reduce the length of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        4096,
    ),
    # SGLang tokenizer_manager._validate_one_request; its ErrorResponse is top-level.
    "sglang": OverflowAnswer(
        400,
        {
            "object": "error",
            "message": "Requested token count exceeds the model's maximum context length of 32768 tokens. You "
            "requested a total of 34816 tokens: 32768 tokens from the input messages and 2048 tokens for the "
            "completion. Please reduce the number of tokens in the input messages or the completion to fit within "
            "the limit.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        32768,
    ),
    "sglang-input": OverflowAnswer(
        400,
        {
            "object": "error",
            "message": "The input (40000 tokens) is longer than the model's context length (32768 tokens).",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        32768,
    ),
    # llama.cpp's server (server_task_result_error::to_json adds n_prompt_tokens and n_ctx).
    "llama.cpp": OverflowAnswer(
        400,
        {
            "error": {
                "code": 400,
                "message": "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 4476,
                "n_ctx": 4096,
            }
        },
        4096,
    ),
    # llama-cpp-python 0.3.36's server, measured here: a streamed request over the window gets an empty 200
    # stream (the ValueError is raised after the headers), the same request unstreamed gets this 400.
    "llama-cpp-python": OverflowAnswer(
        400,
        {
            "error": {
                "message": "This model's maximum context length is 2048 tokens. However, you requested 3052 tokens "
                "(3020 in the messages, 32 in the completion). Please reduce the length of the messages or completion.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        2048,
        streamed="empty",
    ),
    # Ollama's runner (errorInputTooLong) through its OpenAI layer (openai.NewError: 400 -> invalid_request_error).
    "ollama": OverflowAnswer(
        400,
        {
            "error": {
                "message": "the input length exceeds the context length",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        None,
    ),
    # LM Studio, quoted in lmstudio-bug-tracker#237 and #546: {"error": "<text>"}.
    "lmstudio": OverflowAnswer(
        400,
        {
            "error": "Trying to keep the first 15857 tokens when context the overflows. However, the model is loaded "
            "with context length of only 4096 tokens, which is not enough. Try to load the model with a larger "
            "context length, or provide a shorter input"
        },
        4096,
    ),
    # LM Studio 0.4 streaming: HTTP 200 and the error as the stream's event (lmstudio-bug-tracker#2322).
    "lmstudio-stream": OverflowAnswer(
        200,
        {
            "error": {
                "message": "The number of tokens to keep from the initial prompt is greater than the context length. "
                "Try to load the model with a larger context length, or provide a shorter input",
                "type": "invalid_request_error",
            }
        },
        None,
        streamed="event",
    ),
}

# ---- an image sent to a model that takes none ---------------------------------------------------------

IMAGE_REFUSAL: dict[str, tuple[int, Any]] = {
    # llama.cpp server started without a projector (tools/server/utils.hpp, oaicompat_chat_params_parse:
    # the exception becomes an invalid_request_error).
    "llama.cpp": (
        400,
        {
            "error": {
                "code": 400,
                "message": "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj",
                "type": "invalid_request_error",
            }
        },
    ),
    # The same wording answered 500 server_error, as clients' tests record it for older builds.
    "llama.cpp-500": (
        500,
        {"error": {"code": 500, "message": "image input is not supported - hint: provide the mmproj", "type": "server_error"}},
    ),
    # OpenAI chat completions with a text-only model.
    "openai": (
        400,
        {
            "error": {
                "message": "Invalid content type. image_url is only supported by certain models.",
                "type": "invalid_request_error",
                "param": "messages.[0].content.[1].type",
                "code": None,
            }
        },
    ),
    # vLLM serving a text-only model (its OpenAI server's error object).
    "vllm": (
        400,
        {"object": "error", "message": "Qwen2.5-7B-Instruct is not a multimodal model", "type": "BadRequestError", "param": None, "code": 400},
    ),
    # OpenRouter when no provider of the model takes images.
    "openrouter": (404, {"error": {"message": "No endpoints found that support image input", "code": 404}}),
    # Ollama's wording (as clients' tests mock it), in its OpenAI layer's error object.
    "ollama": (400, {"error": {"message": "this model does not support images", "type": "invalid_request_error"}}),
}


# ---- a field the server does not take ----------------------------------------------------------------


def rejection(style: str, fields: list[str]) -> tuple[int, Any]:
    """(status, body) of a strict server refusing ``fields`` (top-level names, or ``messages.N.name``)."""
    names = [f.rsplit(".", 1)[-1] for f in fields]
    first = names[0]
    if style == "openai":  # OpenAI chat completions
        plural = "s" if len(names) > 1 else ""
        return 400, {
            "error": {
                "message": f"Unrecognized request argument{plural} supplied: {', '.join(names)}",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
    if style == "openai-unknown":  # OpenAI's newer form, one field at a time, with param and code
        return 400, {
            "error": {
                "message": f"Unknown parameter: '{fields[0]}'.",
                "type": "invalid_request_error",
                "param": fields[0],
                "code": "unknown_parameter",
            }
        }
    if style == "mistral":  # pydantic extra="forbid" inside Mistral's error envelope, HTTP 422
        return 422, {
            "object": "error",
            "message": {
                "detail": [
                    {"type": "extra_forbidden", "loc": ["body", *_loc(f)], "msg": "Extra inputs are not permitted", "input": {}}
                    for f in fields
                ]
            },
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    if style == "fastapi":  # a FastAPI server with extra="forbid" and no envelope, HTTP 422
        return 422, {
            "detail": [
                {"type": "extra_forbidden", "loc": ["body", *_loc(f)], "msg": "Extra inputs are not permitted", "input": 1}
                for f in fields
            ]
        }
    if style == "gemini":  # Gemini's OpenAI layer: a list of Google errors
        unknown = "\n".join(f'Invalid JSON payload received. Unknown name "{n}": Cannot find field.' for n in names)
        return 400, [{"error": {"code": 400, "message": unknown, "status": "INVALID_ARGUMENT"}}]
    if style == "groq":  # Groq, one field at a time
        if fields[0].startswith("messages."):
            where = fields[0].rsplit(".", 1)[0]
            message = (
                f"'{where}' : for 'role:assistant' the following must be satisfied[('{where}' : property "
                f"'{first}' is unsupported, did you mean 'role'?)]"
            )
        elif first == "max_completion_tokens":
            message = "property 'max_completion_tokens' is unsupported, did you mean 'max_tokens'?"
        else:
            message = f"property '{first}' is unsupported, did you mean 'tools'?"
        return 400, {"error": {"message": message, "type": "invalid_request_error"}}
    raise ValueError(f"unknown strict style {style!r}")


def _loc(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in name.split(".")]


STRICT_STYLES = ("openai", "openai-unknown", "mistral", "fastapi", "gemini", "groq")
# Fields every OpenAI-compatible server takes (chat completions API reference).
STANDARD_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
        "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "seed", "response_format",
        "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "logit_bias", "user", "metadata",
    }
)
STANDARD_MESSAGE_FIELDS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
