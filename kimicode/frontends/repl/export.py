"""/export: a session as Markdown a person can read and share.

User and assistant text as written; each tool call folded into a ``<details>`` block with its arguments
and result; images named (type, size) instead of embedded; the system prompt left out. The whole text
passes the secret redactor, so a key that reached a tool's output does not reach the file.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from kimicode import jsontext
from kimicode.agent.context import data_url_image_size
from kimicode.llm.messages import SUMMARY_PREFIX, TOOL_IMAGES_PREFIX, Message
from kimicode.security.redact import redact

SUMMARY_KEYS = ("command", "path", "target", "url", "query")
_BACKTICKS = re.compile(r"`+")


def transcript_markdown(messages: list[Message], header: dict[str, Any], session_id: str) -> str:
    """The Markdown document for ``messages`` (a session's logged messages, in order)."""
    lines = [f"# kimicode session {session_id}", ""]
    facts = [
        ("workspace", header.get("workspace")),
        ("model", header.get("model")),
        ("started", header.get("created")),
        ("forked from", header.get("forked_from")),
        ("exported", datetime.now().astimezone().isoformat(timespec="seconds")),
    ]
    lines += [f"- {name}: {value}" for name, value in facts if value]
    names: dict[str, str] = {}  # tool call id -> tool name
    images_seen = 0
    for message in messages:
        role = message.get("role")
        if role == "system":
            continue
        if role == "tool":
            lines += _tool_result(message, names)
            continue
        text, images = _text_and_images(message)
        if role == "user" and text.startswith(TOOL_IMAGES_PREFIX):
            lines += [f"> {_image_line(image, images_seen + i + 1)}" for i, image in enumerate(images)]
            images_seen += len(images)
            continue
        if role == "user":
            heading = "## Summary of the earlier conversation" if text.startswith(SUMMARY_PREFIX) else "## User"
            text = text.removeprefix(SUMMARY_PREFIX)
        else:
            heading = "## Assistant"
        lines += ["", heading, ""]
        if text.strip():
            lines.append(text.strip())
        for image in images:
            images_seen += 1
            lines.append(f"*{_image_line(image, images_seen)}*")
        for call in message.get("tool_calls") or []:
            lines += _tool_call(call, names)
    return redact("\n".join(lines).rstrip() + "\n")


def _text_and_images(message: Message) -> tuple[str, list[dict[str, Any]]]:
    """The message's text, and its media parts; a text part just before a picture is that picture's
    label (a file path, a video timestamp) and is kept on it as ``_label``."""
    content = message.get("content")
    if isinstance(content, str):
        return content, []
    parts = [part for part in content or [] if isinstance(part, dict)]
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        if part.get("type") == "text":
            following = parts[index + 1] if index + 1 < len(parts) else {}
            if following.get("type") in ("image_url", "video_url"):
                continue
            texts.append(str(part.get("text", "")))
        elif part.get("type") in ("image_url", "video_url"):
            before = parts[index - 1] if index else {}
            label = str(before.get("text", "")) if before.get("type") == "text" else ""
            media.append({**part, "_label": label})
    return "\n\n".join(t for t in texts if t), media


def _image_line(part: dict[str, Any], number: int) -> str:
    label = f"{part['_label']}, " if part.get("_label") else ""
    if part.get("type") == "video_url":
        return f"[video {number}: {label.rstrip(', ')}]" if label else f"[video {number}]"
    url = str((part.get("image_url") or {}).get("url", ""))
    mime = url[5 : url.find(";")] if url.startswith("data:") and ";" in url[:60] else "image"
    size = data_url_image_size(url)
    dims = f", {size[0]}×{size[1]}" if size else ""
    payload = url.split(",", 1)[1] if "," in url else ""
    kilobytes = len(payload) * 3 // 4 // 1024 if url.startswith("data:") else 0
    weight = f", {kilobytes} KB" if kilobytes else ""
    return f"[image {number}: {label}{mime}{dims}{weight}]"


def _tool_call(call: dict[str, Any], names: dict[str, str]) -> list[str]:
    function = call.get("function") or {}
    name = str(function.get("name", "tool"))
    names[str(call.get("id", ""))] = name
    raw = str(function.get("arguments", ""))
    try:
        args = jsontext.loads(raw) if raw.strip() else {}
        shown = json.dumps(args, ensure_ascii=False, indent=2)
    except json.JSONDecodeError:
        args, shown = {}, raw
    detail = next((str(args[k]) for k in SUMMARY_KEYS if isinstance(args, dict) and isinstance(args.get(k), str)), "")
    summary = f"{name} {detail.splitlines()[0][:80] if detail else ''}".strip()
    return ["", f"<details><summary>● {_html(summary)}</summary>", "", *_fenced(shown, "json"), "", "</details>"]


def _tool_result(message: Message, names: dict[str, str]) -> list[str]:
    text = message.get("content")
    text = text if isinstance(text, str) else _text_and_images(message)[0]
    name = names.get(str(message.get("tool_call_id", "")), "tool")
    first = text.strip().splitlines()[0][:80] if text.strip() else "(no output)"
    return ["", f"<details><summary>⎿ {_html(name)}: {_html(first)}</summary>", "", *_fenced(text, ""), "", "</details>"]


def _fenced(text: str, language: str) -> list[str]:
    # A fence longer than any run of backticks inside, so the content cannot close it.
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text.rstrip("\n"), fence]


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

