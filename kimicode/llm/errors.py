"""What an endpoint's error means: a rejected key, a context overflow, a request field it does not take,
images a model does not take.

Every OpenAI-compatible server words these differently and shapes its error body differently
(``{"error": {"message"}}``, ``{"error": "text"}``, ``{"object": "error", "message"}``, a pydantic
``detail`` list, Gemini's list of errors), so the body is first turned into one text and the facts are
read from that. The wordings recognised here are collected, with their sources, in
tests/fake_llm/vendors.py, which the tests replay through the real client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kimicode.security.redact import redact


class LLMError(Exception):
    """A model request that failed for good. ``message`` is one line a user can act on."""

    # The ``error_kind`` a headless json result reports for this failure ("" for none in particular).
    kind = ""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        # Endpoints echo request details (a rejected key, the Authorization header) in error bodies; the
        # message is shown on stderr and in json results, so it is redacted here, once, for every error.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after: float | None = None
        # Request fields the endpoint said it does not take (see rejected_fields); empty for other errors.
        self.rejected: list[str] = []
        # The endpoint said the model takes no images (see images_refused).
        self.images_refused = False


class AuthError(LLMError):
    """The endpoint rejected the API key (401/403)."""

    kind = "auth"


class ContextOverflowError(LLMError):
    """The request exceeded the model's context window."""

    def __init__(
        self, message: str, *, status: int | None = None, limit: int | None = None, prompt_tokens: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.limit = limit  # the window the endpoint stated, when it stated one
        self.prompt_tokens = prompt_tokens  # the prompt's size as the endpoint counted it


def error_text(body: Any, fallback: str = "") -> str:
    """The human part of an error body, whatever its shape; ``fallback`` when there is none."""
    if isinstance(body, list) and body:  # Gemini's OpenAI layer answers a list of errors
        return "; ".join(filter(None, (error_text(item) for item in body))) or fallback
    if isinstance(body, str):
        return body.strip() or fallback
    if not isinstance(body, dict):
        return fallback
    inner = body.get("error", body)
    if isinstance(inner, str):  # LM Studio: {"error": "text"}
        return inner.strip() or fallback
    if isinstance(inner, dict):
        message = inner.get("message")
        if isinstance(message, str) and message.strip():
            kind = inner.get("type")
            return message.strip() + (f" [{kind}]" if isinstance(kind, str) and kind else "")
        if isinstance(message, dict | list):  # Mistral: {"message": {"detail": [...]}}
            return error_text(message, fallback)
        detail = inner.get("detail")
        if isinstance(detail, str):
            return detail.strip() or fallback
        if isinstance(detail, list):  # FastAPI / pydantic validation
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    where = ".".join(str(p) for p in item.get("loc") or [] if p != "body")
                    parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            return "; ".join(p for p in parts if p) or fallback
    return fallback


def _flat(body: Any) -> str:
    """Everything the body says, as one lower-case string (codes and types included)."""
    if isinstance(body, str | bytes):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    else:
        try:
            text = json.dumps(body, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(body)
    return text.lower()


# Phrases that mean "the prompt (plus the reply it asked room for) does not fit the context window".
# One per vendor wording; tests/fake_llm/vendors.py holds the full bodies they come from.
OVERFLOW_PHRASES = (
    "exceeded model token limit",  # Moonshot
    "context_length_exceeded",  # OpenAI's error code
    "maximum context length",  # OpenAI, vLLM, SGLang ("model's maximum context length")
    "exceeds the context window",  # OpenAI (newer wording)
    "exceed_context_size_error",  # llama.cpp server's error type
    "exceeds the available context size",  # llama.cpp server
    "exceeds context size",  # llama.cpp server (newer wording)
    "is larger than the max context size",  # llama.cpp server (multimodal path)
    "exceed context window of",  # llama-cpp-python
    "longer than the model's context length",  # SGLang, Together
    "input length exceeds the context length",  # Ollama
    "when context the overflows",  # LM Studio (its own wording, sic)
    "context length of only",  # LM Studio
    "is greater than the context length",  # LM Studio (newer wording)
    "context size has been exceeded",  # LM Studio (MLX engine)
    "prompt is too long",  # Anthropic-style gateways
)

# Where a body states the window, in the forms seen above.
_LIMIT_PATTERNS = (
    r"maximum context length is (\d+)",
    r"maximum context length of (\d+)",
    r"model token limit:? (\d+)",
    r"context length \((\d+) tokens?\)",
    r"context size \((\d+) tokens?\)",
    r"\"n_ctx\": ?(\d+)",
    r"context length of only (\d+)",
    r"context window of (\d+)",
)
_PROMPT_PATTERNS = (
    r"\"n_prompt_tokens\": ?(\d+)",
    r"your request has (\d+) input tokens",
    r"(\d+) tokens from the input messages",
    r"(\d+) in the messages",
    r"messages resulted in (\d+) tokens",
    r"the input \((\d+) tokens\)",
    r"request \((\d+) tokens\)",
    r"requested tokens \((\d+)\)",
    r"requested: (\d+)\)",
)


def _first_int(patterns: tuple[str, ...], text: str) -> int | None:
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return int(match.group(1))
    return None


@dataclass(frozen=True)
class Overflow:
    limit: int | None
    prompt_tokens: int | None


def context_overflow(body: Any) -> Overflow | None:
    """The overflow an error body reports, or None when it reports something else."""
    text = _flat(body)
    if not any(phrase in text for phrase in OVERFLOW_PHRASES):
        return None
    # "too large" for max_tokens alone is still this case: the reply asked for room the window lacks.
    limit = _first_int(_LIMIT_PATTERNS, text)
    return Overflow(limit if limit and limit >= 256 else None, _first_int(_PROMPT_PATTERNS, text))


# How servers say "this model takes no images"; tests/fake_llm/vendors.py holds the bodies.
IMAGE_REFUSAL_PHRASES = (
    "image input is not supported",  # llama.cpp server without a projector (mmproj)
    "image_url is only supported by certain models",  # OpenAI, text-only models
    "is not a multimodal model",  # vLLM
    "no endpoints found that support image input",  # OpenRouter
    "model does not support images",  # LM Studio, Ollama
    "does not support image input",
    "does not support vision",
    "vision is not supported",
    "images are not supported",
    "allowed values: ['text']",  # text-only gateways that validate part types
)


def images_refused(body: Any) -> bool:
    """Does the error say that the model takes no images (so the request may go again without them)?"""
    text = _flat(body)
    return any(phrase.lower() in text for phrase in IMAGE_REFUSAL_PHRASES)


# How servers say "I do not take this field". {f} is the field's name (regex-escaped); each pattern
# names the field close to the refusal so an error that merely mentions a field is not read as one.
_REJECTION_TEMPLATES = (
    r"unrecognized request arguments? supplied:[^.\n]*\b{f}\b",  # OpenAI
    r"unknown parameter:? ['\"`]?{f}\b",  # OpenAI (newer)
    r"unsupported parameter:? ['\"`]?{f}\b",  # OpenAI reasoning models
    r"unsupported value:? ['\"`]?{f}\b",  # OpenAI reasoning models (temperature, top_p)
    r"property ['\"`]{f}['\"`] is unsupported",  # Groq
    r"unknown name \\?\"{f}\\?\"",  # Gemini's OpenAI layer
    r"\"extra_forbidden\"[^\]]{{0,80}}\"loc\": ?\[[^\]]*\"{f}\"\]",  # pydantic (Mistral, FastAPI servers)
    r"\"loc\": ?\[[^\]]*\"{f}\"\][^}}]{{0,120}}extra (inputs|fields) (are )?not permitted",
    r"\b{f}\b['\"`]? (is|are) not (supported|permitted|allowed|recognized)",
    r"unexpected keyword argument ['\"`]{f}['\"`]",
    r"unrecognized (key|field)s?(\(s\))?( in object)?:? [^.\n]*['\"`]{f}['\"`]",  # zod
    r"additional properties are not allowed \(['\"`]{f}['\"`]",  # JSON Schema validators
    r"unknown field:? ['\"`]?{f}\b",
)


def rejected_fields(status: int | None, body: Any, candidates: list[str]) -> list[str]:
    """Which of ``candidates`` (fields the request carried) a 400/422 says the endpoint does not take."""
    if status not in (400, 422) or not candidates:
        return []
    text = _flat(body)
    if context_overflow(body) is not None:
        return []  # "max_tokens is too large" is about the window, not about the field
    found: list[str] = []
    structured = _structured_param(body)
    for field in candidates:
        escaped = re.escape(field.lower())
        if structured == field.lower() and ("unknown" in text or "unsupported" in text or "unrecognized" in text):
            found.append(field)
            continue
        if any(re.search(template.format(f=escaped), text) for template in _REJECTION_TEMPLATES):
            found.append(field)
    return found


def _structured_param(body: Any) -> str:
    """OpenAI's ``error.param`` (the field an ``unknown_parameter`` error is about), lower-cased."""
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("param"), str):
        return inner["param"].lower()
    return ""
