"""Tool calls as editors show them: kind, title, locations (with lines), diffs, output; and a stored
conversation replayed as the updates that would have shown it live (``session/load``).

Invariants:
- Pure: these describe a call from its name and arguments (and the workspace); nothing here runs a tool.
- What an editor shows of a result is clipped to SHOWN_OUTPUT_CHARS; the model always gets all of it.
- A replayed conversation shows what the live one did, except what was never shown live (the system
  prompt, the messages that carry a tool's images to the model); a call ends as it ended live, failed
  or completed, as far as the session's log says (outcomes.py).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from acp import helpers as h
from acp.schema import ContentToolCallContent, FileEditToolCallContent, ToolCallLocation, ToolCallStatus, ToolKind

from kimicode import jsontext
from kimicode.frontends.acp.editor import Written, call_key
from kimicode.llm.messages import SUMMARY_PREFIX, Message, is_tool_image_carrier, message_text
from kimicode.tools.base import Tool, ToolResult, truncate_middle
from kimicode.tools.fileio import TextFile

KINDS: dict[str, ToolKind] = {
    "view": "read",
    "createfile": "edit",
    "strreplace": "edit",
    "insert": "edit",
    "bash": "execute",
    "fetch": "fetch",
    "todo": "think",
    "task_output": "read",
    "task_stop": "execute",
    "propose_plan": "switch_mode",
}
EDIT_TOOLS = ("createfile", "strreplace", "insert")
# Commands that only look for things: a bash call made of these alone is shown as a search.
SEARCH_PROGRAMS = frozenset({"grep", "egrep", "fgrep", "rg", "ag", "ack", "find", "fd", "fdfind", "locate"})
# How much of a tool's output a tool call shows (the model gets the whole result).
SHOWN_OUTPUT_CHARS = 8000


def _is_search(command: Any) -> bool:
    if not isinstance(command, str) or not command.strip():
        return False
    from kimicode.security.shell import parse_command

    parsed = parse_command(command)
    if parsed.error or parsed.opaque or not parsed.commands:
        return False
    for part in parsed.commands:
        words = part.words
        program = Path(words[0]).name if words else ""
        if program not in SEARCH_PROGRAMS and not (program == "git" and words[1:2] == ("grep",)):
            return False
    return True


def tool_kind(name: str, args: dict[str, Any]) -> ToolKind:
    if name == "bash" and _is_search(args.get("command")):
        return "search"
    if name == "screenshot":
        return "fetch" if "://" in str(args.get("target") or "") else "read"
    return KINDS.get(name, "other")


def _path(args: dict[str, Any], workspace: Path) -> Path | None:
    value = args.get("path")
    if not isinstance(value, str) or not value.strip():
        return None
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else workspace / path


def _shown(path: Path, workspace: Path) -> str:
    try:
        return str(path.relative_to(workspace)) or "."
    except ValueError:
        return str(path)


def tool_title(name: str, args: dict[str, Any], workspace: Path, tool: Tool | None) -> str:
    path = _path(args, workspace)
    if name == "bash" and isinstance(args.get("command"), str):
        first = args["command"].strip().splitlines()[0] if args["command"].strip() else ""
        return f"`{first[:120]}{' …' if len(first) > 120 or chr(10) in args['command'].strip() else ''}`"
    if name == "view" and path is not None:
        span = args.get("view_range")
        lines = f" (lines {span[0]}–{span[1]})" if isinstance(span, list) and len(span) == 2 else ""
        return f"Read {_shown(path, workspace)}{lines}"
    if name == "createfile" and path is not None:
        return f"Write {_shown(path, workspace)}"
    if name in ("strreplace", "insert") and path is not None:
        return f"Edit {_shown(path, workspace)}"
    if name == "screenshot":
        return f"Screenshot {args.get('target', '')}".strip()
    return tool.summary(args) if tool is not None else name


def tool_locations(name: str, args: dict[str, Any], workspace: Path) -> list[ToolCallLocation]:
    path = _path(args, workspace)
    if path is None:
        return []
    line: int | None = None
    span = args.get("view_range")
    if name == "view" and isinstance(span, list) and span and isinstance(span[0], int):
        line = max(span[0], 1)
    elif name == "insert" and isinstance(args.get("insert_line"), int):
        line = args["insert_line"] + 1
    elif name == "createfile":
        line = 1
    return [ToolCallLocation(path=str(path), line=line)]


def first_changed_line(before: str | None, after: str) -> int:
    """1-based number of the first line that differs (where an editor should look)."""
    if before is None:
        return 1
    old, new = before.splitlines(), after.splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), 1):
        if a != b:
            return number
    return min(len(old), len(new)) + 1


def diff_contents(writes: list[Written]) -> tuple[list[FileEditToolCallContent], list[ToolCallLocation]]:
    """One diff per file a call wrote (its first state before, its last after) and where each starts."""
    merged: dict[Path, tuple[str | None, str]] = {}
    for write in writes:
        before = merged[write.path][0] if write.path in merged else write.before
        merged[write.path] = (before, write.after)
    diffs = [h.tool_diff_content(str(path), after, before) for path, (before, after) in merged.items()]
    places = [ToolCallLocation(path=str(path), line=first_changed_line(b, a)) for path, (b, a) in merged.items()]
    return diffs, places


def pending_diff(
    path: Path, tool: str, args: dict[str, Any], like: TextFile | None, buffer: str | None
) -> list[FileEditToolCallContent]:
    """An edit waiting for approval as one diff of the whole file: the text before (the editor's buffer,
    else the file on disk with its own line endings, None when new) and exactly what the edit would write."""
    from kimicode.tools.edit_preview import preview_edit

    texts = preview_edit(tool, args, like, buffer)
    if texts is None:
        return []
    before, after = texts
    return [h.tool_diff_content(str(path), after, before)]


def fenced(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text.rstrip()}\n{fence}"


def result_contents(name: str, kind: str, result: ToolResult) -> list[ContentToolCallContent]:
    text = truncate_middle(result.text, SHOWN_OUTPUT_CHARS)
    shown = fenced(text) if kind in ("execute", "search") else text
    contents = [h.tool_content(h.text_block(shown))] if text.strip() else []
    for image in result.images:
        data = image.data_url().split(",", 1)[1]
        contents.append(h.tool_content(h.image_block(data, image.mime)))
    return contents


# -- replaying a stored conversation --------------------------------------------------------------------


def replay(
    messages: list[Message], tools: dict[str, Tool], workspace: Path, failed: Collection[str] = ()
) -> Iterator[Any]:
    """The session updates that show ``messages`` as they happened: user and agent messages, thinking,
    tool calls with their results (``failed``: the keys of the calls that ended failed)."""
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    for message in messages:
        role = message.get("role")
        if role == "system" or is_tool_image_carrier(message):
            continue
        if role == "user":
            text = message_text(message)
            if text.startswith(SUMMARY_PREFIX):
                yield h.update_agent_message_text(text)
                continue
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                url = (part.get("image_url") or {}).get("url", "") if part.get("type") == "image_url" else ""
                if url.startswith("data:") and ";base64," in url:
                    mime, data = url[5:].split(";base64,", 1)
                    yield h.update_user_message(h.image_block(data, mime))
            if text:
                yield h.update_user_message_text(text)
        elif role == "assistant":
            if message.get("reasoning_content"):
                yield h.update_agent_thought_text(str(message["reasoning_content"]))
            if message_text(message):
                yield h.update_agent_message_text(message_text(message))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                name = str(function.get("name", ""))
                try:
                    args = jsontext.loads(function.get("arguments") or "{}")
                except json.JSONDecodeError:
                    args = {}
                args = args if isinstance(args, dict) else {}
                call_id = call_key("", str(call.get("id", "")))
                calls[call_id] = (name, args)
                yield h.start_tool_call(
                    call_id,
                    tool_title(name, args, workspace, tools.get(name)),
                    kind=tool_kind(name, args),
                    status="in_progress",
                    locations=tool_locations(name, args, workspace),
                    raw_input=args,
                )
        elif role == "tool":
            call_id = str(message.get("tool_call_id", ""))
            if call_id not in calls:
                continue
            name, args = calls.pop(call_id)
            result = ToolResult(message_text(message))
            status: ToolCallStatus = "failed" if call_id in failed else "completed"
            yield h.update_tool_call(
                call_id, status=status, content=result_contents(name, tool_kind(name, args), result)
            )
