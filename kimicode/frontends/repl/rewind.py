"""``/rewind`` and Esc Esc: pick an earlier user message and go back to just before it: the conversation
(as a fork: the session as it was stays resumable), the files (through the checkpoint taken when that
message's turn began), or both; the message's text comes back in the prompt to edit and send again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SlashCommand

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl

SHOWN = 15  # latest user messages listed
PREVIEW_CHARS = 90
WHAT = {"b": "both", "c": "conversation", "f": "files", "n": "cancel", "escape": "cancel"}


def _preview(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"


async def rewind_command(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.repl.input import ask_choice
    from kimicode.session.rewind import user_turns

    turns = user_turns(repl.opened.session)
    if not turns:
        repl.renderer.dim("no earlier messages in this session to rewind to")
        return
    if arg:
        choice = arg
    else:
        for turn in turns[-SHOWN:]:
            files = "" if turn.checkpoint else "  (no file checkpoint)"
            repl.renderer.info(f"  {turn.number:>3}) {_preview(turn.text)}{files}")
        choice = (await repl.ask_line("  rewind to just before which message? (number, Enter to cancel) › ")).strip()
    if not choice:
        return
    if not choice.isdigit() or not 1 <= int(choice) <= len(turns):
        repl.renderer.error(f"no message {choice!r}: give a number from 1 to {len(turns)}")
        return
    turn = turns[int(choice) - 1]
    answer = await ask_choice("  restore [b] conversation and files  [c] conversation only  [f] files only  [n] cancel › ", WHAT)
    if answer not in ("both", "conversation", "files"):
        repl.renderer.dim("rewind cancelled")
        return
    await repl.rewind_to(turn, conversation=answer != "files", files=answer != "conversation")
    if answer != "files":
        repl.prefill_prompt(turn.text)


COMMAND = SlashCommand(
    "rewind",
    "go back to just before an earlier message: conversation, files or both (also Esc Esc)",
    rewind_command,
    "[N]",
)
