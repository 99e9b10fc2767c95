"""A session log replayed into a history that is valid to send again.

Invariants:
- Compactions apply in log order: each replaces the first ``replaces`` messages after the system message with
  its summary; a compaction that does not fit what was recorded is ignored with a warning.
- In the result every assistant tool call has exactly one result right after it (before any image-carrying
  message that follows them), and no tool result lacks its call: a call left without a result by a killed
  process gets INTERRUPTED_TOOL_RESULT, wherever in the log it sits.
- The last todo record wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.llm.messages import Message, is_tool_image_carrier, summary_message
from kimicode.session.records import RECORD_COMPACTION, RECORD_MESSAGE, RECORD_TODO, read_records

INTERRUPTED_TOOL_RESULT = (
    "[interrupted] The session stopped before this tool call finished; its result is unknown. "
    "Check the current state before relying on it."
)


@dataclass
class LoadedSession:
    messages: list[Message]
    warnings: list[str] = field(default_factory=list)
    todo: list[dict[str, str]] = field(default_factory=list)  # the last todo list recorded


def transcript(path: Path) -> list[Message]:
    """Every message ever logged, in order, compactions not applied."""
    messages: list[Message] = []
    for _lineno, record in read_records(path, []):
        if record.get("type") == RECORD_MESSAGE and isinstance(record.get("message"), dict):
            messages.append(record["message"])
    return messages


def replay(path: Path) -> LoadedSession:
    """The history the log leaves: compactions applied, damage repaired and reported."""
    messages: list[Message] = []
    warnings: list[str] = []
    todo: list[dict[str, str]] = []
    for lineno, record in read_records(path, warnings):
        kind = record.get("type")
        if kind == RECORD_MESSAGE and isinstance(record.get("message"), dict):
            messages.append(record["message"])
        elif kind == RECORD_COMPACTION:
            messages = _apply_compaction(messages, record, lineno, warnings)
        elif kind == RECORD_TODO and isinstance(record.get("items"), list):
            todo = [item for item in record["items"] if _todo_item(item)]
    return LoadedSession(repair_tool_calls(messages, warnings), warnings, todo)


def _todo_item(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("content"), str) and isinstance(item.get("status"), str)


def _apply_compaction(
    messages: list[Message], record: dict[str, Any], lineno: int, warnings: list[str]
) -> list[Message]:
    replaces = record.get("replaces")
    summary = record.get("summary")
    if not isinstance(replaces, int) or not isinstance(summary, str) or replaces < 0:
        warnings.append(f"line {lineno}: compaction record without summary/replaces; ignored")
        return messages
    start = 1 if messages and messages[0].get("role") == "system" else 0
    if start + replaces > len(messages):
        warnings.append(f"line {lineno}: compaction replaces more messages than recorded; kept all")
        return messages
    return [*messages[:start], summary_message(summary), *messages[start + replaces :]]


def repair_tool_calls(messages: list[Message], warnings: list[str]) -> list[Message]:
    """Every assistant tool call gets a result and every tool result has its call, as the API demands.

    A process killed mid-step leaves calls without results; a later resume appends after them, so the
    gap can sit anywhere in the log, not only at its end.
    """
    repaired: list[Message] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        i += 1
        if message.get("role") == "tool":
            warnings.append(f"dropped a tool result with no matching call ({message.get('tool_call_id')})")
            continue
        repaired.append(message)
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not calls:
            continue
        wanted = [c.get("id", "") for c in calls if isinstance(c, dict)]
        answered: set[str] = set()
        block: list[Message] = []
        while i < len(messages) and (messages[i].get("role") == "tool" or is_tool_image_carrier(messages[i])):
            follower = messages[i]
            i += 1
            if follower.get("role") == "tool":
                call_id = follower.get("tool_call_id", "")
                if call_id not in wanted or call_id in answered:
                    warnings.append(f"dropped a tool result with no matching call ({call_id})")
                    continue
                answered.add(call_id)
            block.append(follower)
        missing = [call_id for call_id in wanted if call_id not in answered]
        tool_count = sum(1 for m in block if m.get("role") == "tool")
        # Results must come before any image-carrying user message that follows them.
        insert_at = _position_after_nth_tool(block, tool_count)
        block[insert_at:insert_at] = [
            {"role": "tool", "tool_call_id": call_id, "content": INTERRUPTED_TOOL_RESULT} for call_id in missing
        ]
        if missing:
            warnings.append(f"{len(missing)} tool call(s) had no result (interrupted); marked as interrupted")
        repaired.extend(block)
    return repaired


def _position_after_nth_tool(block: list[Message], n: int) -> int:
    if n == 0:
        return 0
    seen = 0
    for index, message in enumerate(block):
        if message.get("role") == "tool":
            seen += 1
            if seen == n:
                return index + 1
    return len(block)
