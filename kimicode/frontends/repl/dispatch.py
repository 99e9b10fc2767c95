"""What the user sends: a slash command runs (during a turn only those marked ``while_running``), ``#text``
goes to AGENTS.md, a message starts a turn or, during one, waits in the queue; when the turn ends the queue
is sent in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import CommandRegistry, parse
from kimicode.frontends.repl.custom_commands import custom_command_of, is_memory_line, lift_gate, prepare, remember
from kimicode.frontends.repl.prompt_loop import PROMPT

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl


class Dispatcher:
    def __init__(
        self, repl: ReplControl, commands: CommandRegistry, start_turn: Callable[[str], None], exiting: Callable[[], bool]
    ) -> None:
        self._repl = repl
        self._commands = commands
        self._start_turn = start_turn
        self._exiting = exiting

    async def take(self, text: str) -> None:
        """A line typed at the prompt."""
        if not text:
            return
        parsed = parse(text)
        if self._repl.turn_running:
            command = self._commands.get(parsed[0]) if parsed else None
            if parsed is not None and command is not None and command.while_running:
                self._echo(text)
                await self._run(*parsed)
            else:
                self._repl.live.queue.append(text)
            return
        lift_gate(self._repl)  # no turn runs: a custom command's tool restriction ended with its turn
        self._echo(text)
        if parsed is not None:
            await self._run(*parsed)
            return
        if is_memory_line(text):
            await remember(self._repl, text)
            return
        self._start_turn(text)

    async def send_queue(self) -> None:
        """The turn ended: queued commands run in order, the messages between them go as one turn."""
        queue = self._repl.live.queue
        while queue and not self._repl.turn_running and not self._exiting():
            first = queue.pop(0)
            lift_gate(self._repl)
            parsed = parse(first)
            if parsed is not None or is_memory_line(first):
                self._echo(first)
                await (self._run(*parsed) if parsed is not None else remember(self._repl, first))
                continue
            batch = [first]
            while queue and parse(queue[0]) is None and not is_memory_line(queue[0]):
                batch.append(queue.pop(0))
            text = "\n\n".join(batch)
            self._echo(text)
            self._start_turn(text)

    def _echo(self, text: str) -> None:
        """What the user sent, as the scrollback's record of it (the prompt itself leaves none)."""
        for number, line in enumerate(text.splitlines() or [""]):
            self._repl.renderer.info(f"{PROMPT if number == 0 else '  '}{line}", "bold")

    async def _run(self, name: str, arg: str) -> None:
        renderer = self._repl.renderer
        command = self._commands.get(name)
        if command is None:
            renderer.error(f"unknown command /{name}; /help lists them")
            return
        custom = custom_command_of(command)
        try:
            if custom is None:
                await command.handler(self._repl, arg)
            elif (prompt := await prepare(custom, self._repl, arg)) is not None:
                self._start_turn(prompt)  # in the background, as a message's turn: the prompt stays live
        except (KeyboardInterrupt, asyncio.CancelledError):
            renderer.dim("cancelled")
        except Exception as exc:  # noqa: BLE001 - a failing command must not end the session
            renderer.error(f"/{name} failed: {exc}")
