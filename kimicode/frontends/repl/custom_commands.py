"""The user's own slash commands in the REPL (kimicode.extensions.commands), ``/memory``, ``#text`` and the
start-up line that says what extensions were found.

A custom command is one more ``SlashCommand``: Tab completes it, ``/help`` lists it with where it came from.
A built-in command keeps its name; a custom one of the same name is left out (and said so at start-up).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SlashCommand

if TYPE_CHECKING:
    from kimicode.config import Config
    from kimicode.extensions.commands import CustomCommand
    from kimicode.frontends.repl.control import ReplControl
    from kimicode.frontends.repl.render import Renderer
    from kimicode.mcp.prompts import RemotePrompt

MEMORY_MARK = "#"
MAX_PROBLEM_LINES = 5  # of custom command files that could not be read, at start-up
WHERE_KEYS = {"p": "project", "enter": "project", "g": "global", "escape": "cancel"}
# ``#text`` may have been meant for the model ("#123 fails again"): it can still go as a message.
REMEMBER_KEYS = {**WHERE_KEYS, "m": "message"}


def custom_slash_commands(config: Config, reserved: Collection[str]) -> list[SlashCommand]:
    """The custom commands of this workspace and user, as REPL commands; ``reserved``: the built-in names."""
    from kimicode.extensions.commands import find_commands

    catalog = find_commands(config.work_dir, config.home)
    found: list[SlashCommand] = []
    for name, command in catalog.commands.items():
        if name in reserved:
            continue  # a built-in keeps its name (extensions_notice says so)
        found.append(SlashCommand(name, f"{command.summary} ({command.source})", partial(_use, command),
                                  command.argument_hint))
    return found


def prompt_command(prompt: RemotePrompt) -> SlashCommand:
    """An MCP server's prompt as a command (kimicode.frontends.repl.mcp_prompts lists them as they connect)."""
    from kimicode.frontends.repl.mcp_prompts import describe

    return SlashCommand(prompt.command, describe(prompt), partial(_use, prompt), prompt.usage)


async def prepare(command: CustomCommand | RemotePrompt, repl: ReplControl, arg: str) -> str | None:
    """The prompt for the command's turn, its ``allowed-tools`` gate set on the agent until the next turn
    starts (lift_gate); None when it cannot be used (said in one line). An MCP prompt's turn is the server's."""
    from kimicode.extensions.commands_expand import ExpansionError, expand, policed_shell
    from kimicode.extensions.commands_use import tool_gate
    from kimicode.mcp.prompts import RemotePrompt

    if isinstance(command, RemotePrompt):
        from kimicode.frontends.repl.mcp_prompts import prepare_prompt

        lift_gate(repl)
        return await prepare_prompt(command, repl, arg)
    config = repl.config
    shell = policed_shell(repl.agent.policy, repl.agent.ctx) if config.trusted else None
    try:
        # @path is left to the REPL's own mentions, which attach files of every message (next_message.py).
        prompt = await expand(command, arg, config.work_dir, shell, includes=False)
    except ExpansionError as exc:
        repl.renderer.error(str(exc))
        return None
    lift_gate(repl)
    gate = tool_gate(command)
    if gate is not None:
        repl.agent.tool_gate = gate
    return prompt


def lift_gate(repl: ReplControl) -> None:
    """A turn that is not a command's starts: the last command's tool restriction ends."""
    from kimicode.extensions.commands_use import CommandGate

    if isinstance(repl.agent.tool_gate, CommandGate):
        repl.agent.tool_gate = None


async def _use(command: CustomCommand | RemotePrompt, repl: ReplControl, arg: str) -> None:
    """The command's handler where no dispatcher starts the turn in the background (the dispatcher does,
    so the prompt stays live as for any message: custom_command_of)."""
    prompt = await prepare(command, repl, arg)
    if prompt is None:
        return
    try:
        await repl.run_turn(prompt)
    finally:
        lift_gate(repl)


def custom_command_of(command: SlashCommand) -> CustomCommand | RemotePrompt | None:
    """The user's command or MCP prompt the command runs (the dispatcher starts its turn in the background)."""
    handler = command.handler
    return handler.args[0] if isinstance(handler, partial) and handler.func is _use else None


def is_custom(command: SlashCommand) -> bool:
    """One of the user's own commands (an MCP prompt is not)."""
    from kimicode.extensions.commands import CustomCommand

    return isinstance(custom_command_of(command), CustomCommand)


def extensions_notice(config: Config, registry: Iterable[SlashCommand], renderer: Renderer, hooks: int = 0) -> None:
    """The start-up line: what was found, once ("5 commands, 1 plugin"), and which names a built-in keeps."""
    from kimicode.extensions.commands import find_commands
    from kimicode.extensions.summary import extension_counts, extensions_line

    commands = list(registry)
    custom = sum(1 for command in commands if is_custom(command))
    line = extensions_line(
        extension_counts(config.work_dir, config.home, counts={"commands": custom, "hooks": hooks}, trusted=config.trusted)
    )
    if line:
        renderer.dim(f"extensions: {line}")
    builtin = {command.name for command in commands if not is_custom(command)}
    found = find_commands(config.work_dir, config.home)
    for problem in found.problems[:MAX_PROBLEM_LINES]:
        renderer.warn(f"custom command not read: {problem}")
    shadowed = [f"/{name} ({command.source})" for name, command in found.commands.items() if name in builtin]
    if shadowed:
        renderer.dim(f"left out, a built-in command has the name: {', '.join(shadowed)}")


# -- memory ----------------------------------------------------------------------------------------


def is_memory_line(text: str) -> bool:
    """``#text`` on one line: a line for AGENTS.md, not a message ("#" alone or "##" headings are messages)."""
    return text.startswith(MEMORY_MARK) and "\n" not in text and bool(text[1:].strip()) and text[1:2] != "#"


def project_memory_path(workspace: Path) -> Path:
    """The project's instruction file: the one the system prompt reads, else a new AGENTS.md."""
    from kimicode.agent.prompt import INSTRUCTION_FILES

    for name in INSTRUCTION_FILES:
        if (workspace / name).is_file():
            return workspace / name
    return workspace / INSTRUCTION_FILES[0]


async def _where(repl: ReplControl, verb: str, keys: dict[str, str] = WHERE_KEYS) -> Path | str:
    """The file chosen, or the answer that chose none ("message", "cancel")."""
    from kimicode.extensions.memory import GLOBAL_FILE
    from kimicode.frontends.repl.input import ask_choice

    project = project_memory_path(repl.config.work_dir)
    global_file = repl.config.home / GLOBAL_FILE
    extra = "  [m] send it as a message" if "m" in keys else ""
    answer = await ask_choice(f"  {verb}: [p] this project's {project.name}  [g] global {global_file}{extra}  › ", keys)
    if answer == "project":
        return project
    if answer == "global":
        return global_file
    if answer != "message":
        repl.renderer.dim("nothing changed")
    return answer


async def remember(repl: ReplControl, text: str) -> None:
    """``#text``: one more line in the project's or the global instructions (asked which), or a message."""
    from kimicode.extensions.memory import append_memory

    path = await _where(repl, "remember in", REMEMBER_KEYS)
    if path == "message":
        await repl.run_turn(text)
        return
    if not isinstance(path, Path):
        return
    try:
        within = repl.config.work_dir if path.parent == repl.config.work_dir else None  # the project's file
        line = append_memory(path, text[len(MEMORY_MARK):], within)
    except (OSError, ValueError) as exc:
        repl.renderer.error(f"could not write {path}: {getattr(exc, 'strerror', None) or exc}")
        return
    repl.renderer.listing(f"added to {path}: {line} (read from the next session on)", "green")


async def _memory(repl: ReplControl, arg: str) -> None:
    """``/memory``: open the project's or the global instructions in the editor."""
    from prompt_toolkit.application import run_in_terminal

    from kimicode.frontends.repl.editor import EditorError, editor_command

    chosen = await _where(repl, "edit")
    if not isinstance(chosen, Path):
        return
    path = chosen

    def run() -> None:
        import subprocess

        try:
            argv, name = editor_command(repl.terminal)
            path.parent.mkdir(parents=True, exist_ok=True)
            repl.renderer.dim(f"editing {path} in {name}; save and close it to come back")
            code = subprocess.call([*argv, str(path)])
        except (EditorError, OSError) as exc:
            repl.renderer.error(str(exc))
            return
        if code != 0:
            repl.renderer.error(f"{Path(argv[0]).name} exited with status {code}")
        else:
            repl.renderer.dim(f"{path.name} is read from the next session on")

    await run_in_terminal(run, in_executor=True)


MEMORY_COMMAND = SlashCommand("memory", "open AGENTS.md (this project's or the global one) in the editor", _memory)
