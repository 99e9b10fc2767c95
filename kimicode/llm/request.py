"""The chat-completions request as plain JSON: what is sent to the model, byte for byte.

Invariants:
- Pure: the body depends only on the config, the model's profile, what is known about the endpoint and
  the caller's messages, tools and options; nothing here does I/O or changes its inputs.
- Only the optional fields the endpoint takes are sent (llm/endpoint.py keeps which ones it refused).
- Messages are sent as given, except that ``reasoning_content`` is dropped where the endpoint refuses it
  and each image or video part becomes a line saying it was not sent where the model takes none.
- The bytes are compact JSON with non-ASCII kept as UTF-8: the prompt cache and the request size both
  depend on that form staying the same from one request to the next. The fields that never change (model,
  options, tools) come before the messages, so two requests' bytes agree up to their first different message.
"""

from __future__ import annotations

import json
import operator
from itertools import repeat
from typing import TYPE_CHECKING, Any, Required, TypedDict

from kimicode.llm.endpoint import MAX_TOKENS_FIELDS, OPTIONAL_FIELDS, EndpointProfile

if TYPE_CHECKING:
    from kimicode.config import Config
    from kimicode.llm.profiles import ModelProfile

MEDIA_PART_TYPES = ("image_url", "video_url")
MEDIA_NOT_SENT = "[{kind} not sent: this model takes no images at this endpoint]"


class BodyOptions(TypedDict, total=False):
    """What a caller chooses about one request besides its messages and tools."""

    thinking: Required[bool]
    max_tokens: int | None
    session_id: str  # the prompt cache key, where the endpoint takes one


def build_body(
    config: Config,
    profile: ModelProfile,
    endpoint: EndpointProfile,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    options: BodyOptions,
) -> dict[str, Any]:
    """The request as plain JSON: only the optional fields this endpoint takes."""
    thinking = options["thinking"]
    max_tokens = options.get("max_tokens")
    session_id = options.get("session_id", "")
    if not endpoint.takes("reasoning_content"):
        messages = [without_reasoning(m) if "reasoning_content" in m else m for m in messages]
    if not endpoint.takes_images(config.model):
        messages = [without_media(m) if carries_media(m) else m for m in messages]
    body: dict[str, Any] = {"model": config.model, "messages": messages, "stream": True}
    if endpoint.takes("stream_options"):
        body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"] = tools
    if max_tokens:
        body[endpoint.max_tokens_field] = max_tokens
    sampling = profile.sampling(thinking)
    if sampling:
        for name, value in zip(("temperature", "top_p"), sampling, strict=True):
            if endpoint.takes(name):
                body[name] = value
    if session_id and endpoint.takes("prompt_cache_key"):
        body["prompt_cache_key"] = session_id
    configured = config.thinking_style
    if profile.thinking or configured != "auto":
        style = endpoint.thinking_style(configured)
        if style == "moonshot":
            body["thinking"] = {"type": "enabled" if thinking else "disabled"}
        elif style == "chat_template":
            body["chat_template_kwargs"] = {"thinking": thinking}
    return in_prefix_order(body)


# What stays the same from request to request first, the messages after it, what changes per request last: the
# bytes of one sub-agent's request and another's (or of a step's and the next step's) then share one prefix, as
# far as their messages agree.
_LAST_FIELDS = ("messages", *MAX_TOKENS_FIELDS, "prompt_cache_key")


def in_prefix_order(body: dict[str, Any]) -> dict[str, Any]:
    ordered = {key: value for key, value in body.items() if key not in _LAST_FIELDS}
    ordered.update((key, body[key]) for key in _LAST_FIELDS if key in body)
    return ordered


# One encoder for every request (json.dumps would make one per call). A request is a tree of plain JSON values
# built afresh from the history, never circular, so the walk keeps no set of the containers it is inside: the
# bytes are the same as with that check (json.dumps's default), and a long history encodes ~15% faster.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
to_json = _ENCODER.encode  # (the text of one value, as it appears in a request)


def encode(body: dict[str, Any]) -> bytes:
    """The bytes sent for ``body``."""
    return _ENCODER.encode(body).encode("utf-8")


def encode_unstreamed(body: dict[str, Any]) -> bytes:
    """The same request asked for one JSON completion instead of a stream."""
    unstreamed = {key: value for key, value in body.items() if key != "stream_options"}
    return encode({**unstreamed, "stream": False})


def optional_fields(body: dict[str, Any]) -> list[str]:
    """The fields of a request an endpoint may refuse (llm/endpoint.py), as sent."""
    sent = [name for name in (*OPTIONAL_FIELDS, *MAX_TOKENS_FIELDS) if name in body]
    # Asked of the whole history on every request: the test runs in C (map), not as a generator's step per message.
    if any(map(operator.contains, body.get("messages") or [], repeat("reasoning_content"))):
        sent.append("reasoning_content")
    return sent


def carries_media(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") in MEDIA_PART_TYPES for part in content
    )


def without_media(message: dict[str, Any]) -> dict[str, Any]:
    """The message with each image or video part replaced by a line saying it was not sent."""
    parts = []
    for part in message["content"]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in MEDIA_PART_TYPES:
            part = {"type": "text", "text": MEDIA_NOT_SENT.format(kind="image" if kind == "image_url" else "video")}
        parts.append(part)
    return {**message, "content": parts}


def without_reasoning(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != "reasoning_content"}
