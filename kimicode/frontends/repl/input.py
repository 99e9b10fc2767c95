"""prompt-toolkit pieces of the REPL: keys of the main prompt, completion, the one-key approval question."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

MAX_PATH_COMPLETIONS = 50
MAX_RESOURCE_COMPLETIONS = 50


def main_key_bindings() -> KeyBindings:
    """Enter sends; Alt-Enter and Ctrl-J insert a newline; Ctrl-C clears the line, or on an empty line
    raises KeyboardInterrupt (twice in a row exits)."""
    bindings = KeyBindings()

    @bindings.add("enter")
    def _send(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.complete_state and buffer.complete_state.current_completion:
            buffer.apply_completion(buffer.complete_state.current_completion)
            return
        buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    @bindings.add("c-j")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt())

    return bindings


class MentionCompleter(Completer):
    """Slash commands at the start of the input; workspace paths, and MCP resources (``SERVER:URI``,
    from ``resources``), after ``@``."""

    def __init__(
        self, workspace: Path, command_names: Callable[[], Iterable[str]],
        resources: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.workspace = workspace
        self.command_names = command_names
        self.resources = resources

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and " " not in before:
            for name in self.command_names():
                if name.startswith(before[1:]):
                    yield Completion("/" + name, start_position=-len(before))
            return
        word = before.split()[-1] if before and not before[-1].isspace() else ""
        if word.startswith("@"):
            yield from self._resources(word[1:])
            yield from self._paths(word[1:])

    def _resources(self, partial: str) -> Iterable[Completion]:
        matching = [mention for mention in self.resources() if mention.startswith(partial) and mention != partial]
        for mention in matching[:MAX_RESOURCE_COMPLETIONS]:
            yield Completion(mention, start_position=-len(partial), display=mention)

    def _paths(self, partial: str) -> Iterable[Completion]:
        folder, _, stem = partial.rpartition("/")
        base = (self.workspace / folder) if folder else self.workspace
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            return
        shown = 0
        for entry in entries:
            if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem.startswith(".")):
                continue
            suffix = "/" if entry.is_dir() else ""
            value = f"{folder}/{entry.name}" if folder else entry.name
            yield Completion(value + suffix, start_position=-len(partial), display=entry.name + suffix)
            shown += 1
            if shown >= MAX_PATH_COMPLETIONS:
                return


APPROVAL_KEYS = {"y": "once", "enter": "once", "a": "session", "!": "always", "n": "reject", "escape": "reject"}


async def ask_choice(message: str, keys: dict[str, str] = APPROVAL_KEYS) -> str:
    """One key press answers: returns the mapped answer, "cancel" on Ctrl-C. Other keys are ignored."""
    bindings = KeyBindings()
    for key, answer in keys.items():
        bindings.add(key, eager=True)(lambda event, answer=answer: event.app.exit(result=answer))
        if len(key) == 1 and key.isalpha():
            bindings.add(key.upper())(lambda event, answer=answer: event.app.exit(result=answer))
    bindings.add("c-c")(lambda event: event.app.exit(result="cancel"))
    bindings.add("c-d")(lambda event: event.app.exit(result="cancel"))
    bindings.add("<any>")(lambda event: None)
    from kimicode.frontends.repl.live import terminal_output

    session: PromptSession[str] = PromptSession(message, key_bindings=bindings, output=terminal_output())
    return await session.prompt_async(handle_sigint=False)
