"""What a resumed session said, shown compactly before the prompt (``-C``, ``-r``, ``/resume``) and in full
with ``/history``: each turn as its user message, one line per tool call, and its final answer.

The session log's transcript is read (every message ever logged: a compaction summarises what the model
gets, not what the user sees here); the agent's own notes and compaction summaries are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kimicode import jsontext
from kimicode.frontends.repl.commands import SlashCommand
from kimicode.llm.messages import Message, message_text
from kimicode.session.rewind import typed_by_user, typed_text

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl
    from kimicode.frontends.repl.render import Renderer

RESUME_TURNS = 3  # turns replayed when a session is resumed
ANSWER_LINES = 4  # lines of a final answer shown
LINE_CHARS = 110
ARGUMENT_CHARS = 60


@dataclass
class PastTurn:
    user: str
    calls: list[str] = field(default_factory=list)  # one line each: name and its main argument
    answer: str = ""  # the last text the assistant wrote in the turn


def past_turns(messages: list[Message]) -> list[PastTurn]:
    turns: list[PastTurn] = []
    for message in messages:
        role = message.get("role")
        if role == "user" and typed_by_user(message):
            turns.append(PastTurn(typed_text(message)))
        elif role == "assistant" and turns:
            text = message_text(message).strip()
            if text:
                turns[-1].answer = text
            turns[-1].calls.extend(_call_line(call) for call in message.get("tool_calls") or [])
    return turns


def _call_line(call: object) -> str:
    function = call.get("function", {}) if isinstance(call, dict) else {}
    name = str(function.get("name", "?"))
    try:
        arguments = jsontext.loads(function.get("arguments") or "{}")
    except (ValueError, TypeError):
        arguments = {}
    main = next((v for v in arguments.values() if isinstance(v, str) and v.strip()), "") if isinstance(arguments, dict) else ""
    return f"{name} {_clip(' '.join(main.split()), ARGUMENT_CHARS)}".rstrip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def history_lines(messages: list[Message], last: int | None) -> list[tuple[str, str]]:
    """(line, style) for the last ``last`` turns (None: all), with how many earlier ones were left out."""
    turns = past_turns(messages)
    shown = turns if last is None or last >= len(turns) else turns[len(turns) - last :]
    lines: list[tuple[str, str]] = []
    earlier = len(turns) - len(shown)
    if earlier:
        lines.append((f"… {earlier} earlier turn{'s' if earlier != 1 else ''} (/history shows them)", "dim"))
    for turn in shown:
        first, *more = turn.user.strip().splitlines() or [""]
        lines.append((f"› {_clip(first, LINE_CHARS)}{' …' if more else ''}", "bold"))
        lines.extend((f"  ⚙ {_clip(call, LINE_CHARS)}", "dim") for call in turn.calls)
        answer = turn.answer.strip().splitlines()
        for line in answer[:ANSWER_LINES]:
            lines.append((f"  {_clip(line, LINE_CHARS)}", ""))
        if len(answer) > ANSWER_LINES:
            lines.append((f"  … {len(answer) - ANSWER_LINES} more lines", "dim"))
    return lines


def show_past(renderer: Renderer, messages: list[Message], last: int | None = RESUME_TURNS) -> None:
    for line, style in history_lines(messages, last):
        renderer.listing(line, style)


async def history_command(repl: ReplControl, arg: str) -> None:
    if arg and not arg.isdigit():
        repl.renderer.error("use /history (every turn) or /history N (the last N turns)")
        return
    messages = repl.opened.session.transcript()
    if not any(typed_by_user(m) for m in messages):
        repl.renderer.dim("no turns in this session yet")
        return
    show_past(repl.renderer, messages, int(arg) if arg else None)


COMMAND = SlashCommand("history", "show this session's earlier turns (all, or the last N)", history_command, "[N]", while_running=True)
