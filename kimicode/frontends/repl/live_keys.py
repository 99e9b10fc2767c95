"""Keys for working alongside the agent; merged after the prompt's own keys, so these win where they apply.

While a turn runs: Enter queues the message for the turn's end (the prompt's own Enter), Up on an empty
line takes the last queued message back to edit or drop it, Ctrl-S sends the line (or, on an empty line,
the queued messages) into the running turn, Ctrl-B moves the running command to the background, Ctrl-C
clears the line or, on an empty one, cancels the turn, and Esc cancels it. Any time: Shift-Tab cycles the
approval stance (ask, auto-edit, plan) and Ctrl-T folds or unfolds the todo list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.filters import Condition, has_completions
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl


def alongside_bindings(repl: ReplControl) -> KeyBindings:
    bindings = KeyBindings()
    running = Condition(lambda: repl.turn_running)
    empty_line = Condition(lambda: not repl.prompt_text())

    @bindings.add("c-c", filter=running)
    def _clear_or_cancel(event: KeyPressEvent) -> None:
        if event.current_buffer.text:
            event.current_buffer.reset()
        else:
            repl.cancel_running_turn()

    @bindings.add("escape", filter=running & ~has_completions)
    def _cancel(event: KeyPressEvent) -> None:
        repl.cancel_running_turn()

    @bindings.add("c-s", filter=running)
    def _steer(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        text = buffer.text
        buffer.reset(append_to_history=bool(text.strip()))
        repl.steer(text)

    @bindings.add("c-b", filter=Condition(lambda: repl.can_background))
    def _background(event: KeyPressEvent) -> None:
        repl.background_command()

    @bindings.add("up", filter=Condition(lambda: bool(repl.live.queue)) & empty_line)
    def _edit_queued(event: KeyPressEvent) -> None:
        event.current_buffer.text = repl.live.queue.pop()
        event.current_buffer.cursor_position = len(event.current_buffer.text)

    # Esc Esc on an empty prompt between turns: rewind (kimicode.frontends.repl.rewind).
    @bindings.add("escape", "escape", filter=~running & empty_line & ~has_completions)
    def _rewind(event: KeyPressEvent) -> None:
        event.current_buffer.text = "/rewind"
        event.current_buffer.validate_and_handle()

    @bindings.add("c-t")
    def _fold_todo(event: KeyPressEvent) -> None:
        repl.live.todo_expanded = not repl.live.todo_expanded

    @bindings.add("s-tab", filter=~has_completions)
    def _stance(event: KeyPressEvent) -> None:
        repl.cycle_stance()

    return bindings
