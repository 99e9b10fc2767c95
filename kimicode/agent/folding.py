"""What is sent of old tool results: folded once the model has read them, the history itself untouched.

The session log and ``Agent.messages`` keep every result in full; only the request carries the folded
form. A result the model read several steps ago is cut to its first and last lines with a line saying how
to see it again, a result identical to an earlier one is named instead of repeated, a run of the same
call with the same output is sent once with how often it was made, and the loop's "you made this exact
call N times" note, superseded by the newest one, is dropped from old results.

Invariants:
- Folding never splits a tool-calling assistant message from its results, never changes an assistant,
  system or user message (a repeated step is left out whole), and never folds the newest
  ``FOLD_KEEP_STEPS`` tool-calling steps.
- The prompt cache works by prefix, so folding moves in chunks: the boundary advances only when folding
  the part behind it saves at least ``FOLD_CHUNK_BYTES``, and then everything older is folded at once.
  Between two advances the folded part is sent byte for byte as before.
- A history that changed behind the boundary (compaction, a new conversation) is folded anew.
"""

from __future__ import annotations

import json
import re

from kimicode.agent import notes
from kimicode.agent.context import step_units
from kimicode.llm.messages import Message
from kimicode.llm.request import encode

# The newest tool-calling steps always sent in full: the model may still be working from them.
FOLD_KEEP_STEPS = 2
# The boundary moves only when that saves at least this much of every later request (bytes, ~4k tokens):
# a larger value keeps the cached prefix longer but sends more stale output.
FOLD_CHUNK_BYTES = 16384
# An old result longer than this (characters) is cut to its first and last lines.
FOLD_MIN_CHARS = 1200
FOLD_HEAD_CHARS = 600
FOLD_TAIL_CHARS = 400
# An old result at least this long that repeats an earlier one is named instead of sent again.
DEDUP_MIN_CHARS = 80

AGAIN = "call the tool again to see it in full"


def _repeat_note_pattern() -> re.Pattern[str]:
    """The loop's repeated-call note (agent/notes.py) as a pattern, whatever the tool and the count."""
    name, count = "\x00", 123456789
    text = notes.repeated(name, count)
    before, rest = text.split(name, 1)
    middle, after = rest.split(str(count), 1)
    return re.compile(re.escape(before) + r"\S+" + re.escape(middle) + r"\d+" + re.escape(after) + r"\Z")


REPEAT_NOTE = _repeat_note_pattern()


def folded_lines_note(lines: int, chars: int) -> str:
    return f"[... {lines} lines ({chars} characters) of this old result are not sent again; {AGAIN} ...]"


def same_output_note(call_id: str) -> str:
    return f"[same output as call {call_id}; {AGAIN}]"


def fold_text(text: str) -> str:
    """``text`` cut to about its first FOLD_HEAD_CHARS and last FOLD_TAIL_CHARS, on line boundaries
    where the lines allow, with a line saying what was left out and how to see it."""
    if len(text) <= FOLD_MIN_CHARS:
        return text
    head_end = text.rfind("\n", 0, FOLD_HEAD_CHARS)
    head_end = head_end + 1 if head_end > 0 else FOLD_HEAD_CHARS
    tail_start = text.find("\n", len(text) - FOLD_TAIL_CHARS)
    tail_start = tail_start + 1 if 0 <= tail_start < len(text) - 1 else len(text) - FOLD_TAIL_CHARS
    left_out = text[head_end:tail_start]
    note = folded_lines_note(left_out.count("\n"), len(left_out))
    head = text[:head_end].rstrip("\n")
    return f"{head}\n{note}\n{text[tail_start:]}"


class Folder:
    """Builds the messages of each request from the full history; one per conversation.

    Each old step is folded once, when it leaves the newest steps, and its saving kept, so a request
    costs about as much with a thousand steps behind it as with ten."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._behind: list[Message] = []  # the history's messages before the boundary, as they were
        self._sent: list[Message] = []  # what is sent for them
        self._first_call: dict[str, str] = {}  # result text -> the call that first returned it
        # Steps past the boundary already folded, waiting for the chunk to fill.
        self._pending: list[Message] = []  # their messages, as they were
        self._pending_units: list[list[Message]] = []  # their folded form, unit by unit
        self._pending_saved = 0  # bytes folding them saves (a repeated step saves all of its own)
        self._run_key: str | None = None

    def request(self, messages: list[Message]) -> list[Message]:
        """The messages to send for ``messages``: the part behind the boundary folded, the rest as is."""
        if not self._still_seen(messages):
            self._reset()  # the history changed behind the boundary: start over
        boundary = len(self._behind)
        candidate = _keep_start(messages, boundary)
        start = boundary + len(self._pending)
        for unit in step_units(messages[start:candidate]) if candidate > start else []:
            self._add_pending(unit)
        if self._pending_saved >= FOLD_CHUNK_BYTES:
            self._behind.extend(self._pending)
            self._sent.extend(_collapse(self._pending_units))
            self._pending, self._pending_units, self._pending_saved, self._run_key = [], [], 0, None
        return [*self._sent, *messages[len(self._behind) :]]

    def _add_pending(self, unit: list[Message]) -> None:
        folded = [_fold(m, self._first_call) for m in unit]
        key = _repeat_key(folded)
        if key is not None and key == self._run_key:  # a repeated step is left out whole
            saved = sum(_size(m) for m in unit)
        else:  # a message folding left as it was saves nothing: not serialised to learn that
            saved = sum(_size(m) - _size(f) for m, f in zip(unit, folded, strict=True) if f is not m)
        self._pending_saved += saved
        self._run_key = key
        self._pending.extend(unit)
        self._pending_units.append(folded)

    def _still_seen(self, messages: list[Message]) -> bool:
        behind, pending = self._behind, self._pending
        start, end = len(behind), len(behind) + len(pending)
        # Every step compares the whole history so far, as two list comparisons in C: each message is the
        # same object (list equality tests identity first), or an equal one, which folds to the same text.
        return len(messages) >= end and messages[:start] == behind and messages[start:end] == pending


def _keep_start(messages: list[Message], boundary: int) -> int:
    """Index of the first message always sent in full: the start of the FOLD_KEEP_STEPS-th newest
    tool-calling step (``boundary`` when there are not that many steps after it)."""
    steps = 0
    for index in range(len(messages) - 1, boundary - 1, -1):
        if messages[index].get("role") == "assistant" and messages[index].get("tool_calls"):
            steps += 1
            if steps == FOLD_KEEP_STEPS:
                return index
    return boundary


def _fold(message: Message, first_call: dict[str, str]) -> Message:
    """The folded form of one old message; ``first_call`` learns each result it sees."""
    content = message.get("content")
    if message.get("role") != "tool" or not isinstance(content, str):
        return message
    text = REPEAT_NOTE.sub("", content)
    call_id = str(message.get("tool_call_id", ""))
    earlier = first_call.setdefault(text, call_id)
    if earlier != call_id and len(text) >= DEDUP_MIN_CHARS:
        text = same_output_note(earlier)
    else:
        text = fold_text(text)
    return message if text == content else {**message, "content": text}


def _collapse(units: list[list[Message]]) -> list[Message]:
    """The units with each run of the same single call returning the same output kept once, with a line
    saying how often it was made; a run never reaches into an earlier chunk, so those bytes stay put."""
    out: list[Message] = []
    run_key: str | None = None
    run = 0
    for unit in units:
        key = _repeat_key(unit)
        if key is not None and key == run_key:
            run += 1
            continue
        _close_run(out, run)
        run_key, run = key, 1
        out.extend(unit)
    _close_run(out, run)
    return out


def _repeat_key(unit: list[Message]) -> str | None:
    """What makes two steps the same: one call with the same name and arguments, the same text around it
    and the same result; None for any other step (several calls, pictures, no call)."""
    if len(unit) != 2 or unit[1].get("role") != "tool" or len(unit[0].get("tool_calls") or []) != 1:
        return None
    call = unit[0]["tool_calls"][0].get("function", {})
    said = (unit[0].get("content"), unit[0].get("reasoning_content"))
    return json.dumps([call.get("name"), call.get("arguments"), said, unit[1].get("content")])


def _close_run(out: list[Message], run: int) -> None:
    if run > 1:
        out[-1] = {**out[-1], "content": f"{out[-1]['content']}\n{repeated_run_note(run)}"}


def repeated_run_note(times: int) -> str:
    return f"[this exact call was made {times} times in a row with this same output; the repeats are not sent again]"


def _size(message: Message) -> int:
    return len(encode(message))  # (its bytes in a request)
