"""Slash commands of the REPL: a small registry, so a feature adds its command in one line:

    register(SlashCommand("skills", "list the skills the agent can use", skills_command))

A handler is ``async def handler(repl, argument: str) -> None``; ``repl`` is the running
kimicode.frontends.repl.app.Repl (its renderer, agent, config, runtime, pending_images ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kimicode.frontends.repl.app import Repl

Handler = Callable[["Repl", str], Awaitable[Any]]


@dataclass(frozen=True)
class SlashCommand:
    name: str  # without the slash
    help: str
    handler: Handler
    usage: str = ""  # e.g. "[ID]"
    # Runs at once while a turn is running (it only reads, or changes what is shown); others wait in the
    # queue for the turn's end.
    while_running: bool = False


COMMANDS: dict[str, SlashCommand] = {}
# ``!cmd`` runs a shell command; it is dispatched like a command named "!".
SHELL_ESCAPE = "!"


def slash_names() -> list[str]:
    """The commands typed with a slash (what Tab completes after ``/``)."""
    return sorted(name for name in COMMANDS if name != SHELL_ESCAPE)


def register(command: SlashCommand) -> None:
    COMMANDS[command.name] = command


def slash(name: str, help: str, usage: str = "", while_running: bool = False) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        register(SlashCommand(name, help, handler, usage, while_running))
        return handler

    return decorate


def parse(line: str) -> tuple[str, str] | None:
    """("name", "argument") when ``line`` is a slash command (or ``!cmd``), else None ("/path/to/x" is not one)."""
    if line.startswith(SHELL_ESCAPE):
        return SHELL_ESCAPE, line[1:].strip()
    if not line.startswith("/"):
        return None
    head, _, rest = line[1:].partition(" ")
    if not head or "/" in head:
        return None
    return head, rest.strip()


# -- the built-in commands ---------------------------------------------------------------------------


@slash("help", "show the commands and keys", while_running=True)
async def _help(repl: Repl, arg: str) -> None:
    for command in sorted(COMMANDS.values(), key=lambda c: c.name):
        usage = f" {command.usage}" if command.usage else ""
        label = f"{SHELL_ESCAPE}{command.usage}" if command.name == SHELL_ESCAPE else f"/{command.name}{usage}"
        repl.renderer.info(f"  {label:<25} {command.help}")
    repl.renderer.dim(
        "  Enter sends · Shift-Enter, Alt-Enter or Ctrl-J new line · Ctrl-G edit in $EDITOR · Ctrl-V paste an "
        "image · @path attaches a file · Ctrl-C cancels a turn · Ctrl-C twice or Ctrl-D exits"
    )
    repl.renderer.dim(
        "  During a turn: Enter queues · Up edits the last queued · Ctrl-S sends into the turn · "
        "Ctrl-B backgrounds the command · Esc cancels · Shift-Tab: ask → auto-edit → plan · Ctrl-T folds the todo list"
    )


@slash("exit", "leave kimicode (the session is saved)", while_running=True)
async def _exit(repl: Repl, arg: str) -> None:
    repl.want_exit = True


register(SlashCommand("quit", "same as /exit", _exit, while_running=True))


@slash("clear", "start a new session (the old one stays resumable)")
async def _clear(repl: Repl, arg: str) -> None:
    repl.new_session()
    repl.renderer.dim(f"new session {repl.opened.session.id}")


@slash("compact", "summarise older history now to free context; the text says what to keep", "[KEEP]")
async def _compact(repl: Repl, arg: str) -> None:
    await repl.compact_now(arg)


@slash("mode", "show or set the mode", "[instant|thinking|agent|swarm]")
async def _mode(repl: Repl, arg: str) -> None:
    from kimicode.config import MODES

    if not arg:
        repl.renderer.info(f"mode: {repl.config.mode} (choices: {', '.join(MODES)})")
        return
    if arg not in MODES:
        repl.renderer.error(f"unknown mode '{arg}': use one of {', '.join(MODES)}")
        return
    await repl.set_mode(arg)
    tools = ", ".join(repl.agent.current_tools())
    repl.renderer.dim(f"mode: {arg} · thinking {'on' if repl.agent.thinking else 'off'} · tools: {tools}")


@slash("model", "show or set the model", "[NAME]")
async def _model(repl: Repl, arg: str) -> None:
    if not arg:
        repl.renderer.info(f"model: {repl.config.model} at {repl.config.base_url}")
        return
    await repl.set_model(arg)
    repl.renderer.dim(f"model: {arg} (context {repl.agent.client.profile.context_window:,} tokens)")


@slash("thinking", "turn thinking on or off; show, hide (collapse) or print the last one", "[on|off|show|hide|last]")
async def _thinking(repl: Repl, arg: str) -> None:
    if arg in ("show", "hide"):
        repl.renderer.show_thinking = arg == "show"
        repl.renderer.dim(f"thinking is {'shown' if arg == 'show' else 'collapsed to one line'}")
        return
    if arg == "last":
        repl.renderer.dim(repl.renderer.last_thinking.strip() or "(no thinking in the last reply)")
        return
    if arg in ("on", "off"):
        repl.agent.thinking = arg == "on"
    elif not arg:
        repl.agent.thinking = not repl.agent.thinking
    else:
        repl.renderer.error("use /thinking on|off (the model thinks) or show|hide|last (what you see)")
        return
    repl.renderer.dim(f"thinking: {'on' if repl.agent.thinking else 'off'}")


@slash("yolo", "approve every action from now on (again to ask again)", while_running=True)
async def _yolo(repl: Repl, arg: str) -> None:
    policy = repl.agent.policy
    policy.yolo = not policy.yolo
    repl.config.yolo = policy.yolo
    repl.renderer.dim("yolo: every action runs without asking" if policy.yolo else "yolo off: actions ask again")


@slash("permissions", "list the permission rules in force and where each came from", while_running=True)
async def _permissions(repl: Repl, arg: str) -> None:
    policy = repl.agent.policy
    rules = policy.listing()
    stance = "yolo (every action runs without asking)" if policy.yolo else "asks before actions that change things"
    repl.renderer.info(f"  {stance}; folder {'trusted' if policy.trusted else 'not trusted'}")
    if not rules:
        repl.renderer.dim("  no permission rules; add [permissions] allow/ask/deny to config.toml, or answer ! (always)")
        return
    for rule in rules:
        style = {"deny": "red", "ask": "yellow", "allow": "green"}.get(rule.kind, "")
        repl.renderer.listing(f"  {rule.kind:<5}  {rule.text:<40}  {rule.source}", style)


@slash("cost", "tokens and cost of this session", while_running=True)
async def _cost(repl: Repl, arg: str) -> None:
    totals = repl.agent.totals
    repl.renderer.info(
        f"input {totals.prompt_tokens:,} tokens ({totals.cached_tokens:,} cached) · "
        f"output {totals.completion_tokens:,} tokens · {totals.tool_calls} tool calls · ${totals.cost:.4f}"
    )


@slash("undo", "restore the files the last turn changed")
async def _undo(repl: Repl, arg: str) -> None:
    await repl.undo()


@slash("diff", "show what this session changed (in the editor's diff view in VS Code, Cursor, Zed)", "[text]")
async def _diff(repl: Repl, arg: str) -> None:
    diff = repl.session_diff()
    if not diff.strip():
        repl.renderer.dim("no changes in this session")
    elif arg == "text" or not repl.open_diff_in_editor(diff):
        repl.renderer.unified_diff(diff)


@slash("sessions", "list this workspace's sessions")
async def _sessions(repl: Repl, arg: str) -> None:
    from kimicode.frontends.common.sessions import describe_sessions, session_store

    infos = session_store(repl.config).list(repl.config.work_dir)
    if not infos:
        repl.renderer.dim("no saved sessions for this workspace")
        return
    for line in describe_sessions(infos):
        marker = "*" if line.startswith(repl.opened.session.id) else " "
        repl.renderer.info(f"{marker} {line}")


@slash("resume", "continue a saved session (no ID: pick from a list)", "[ID]")
async def _resume(repl: Repl, arg: str) -> None:
    await repl.resume(arg or None)


@slash("image", "attach an image to your next message", "PATH")
async def _image(repl: Repl, arg: str) -> None:
    from kimicode.frontends.common.media import resolve_user_path

    if not arg:
        repl.renderer.error("give the image's path: /image PATH (or mention it as @file.png)")
        return
    repl.attach_images([resolve_user_path(arg, repl.config.work_dir)])


@slash("video", "attach a video (as sampled frames) to your next message", "PATH")
async def _video(repl: Repl, arg: str) -> None:
    from kimicode.frontends.common.media import resolve_user_path

    if not arg:
        repl.renderer.error("give the video's path: /video PATH")
        return
    await repl.attach_video(resolve_user_path(arg, repl.config.work_dir))


@slash("skills", "list the skills found (name, source, path)")
async def _skills(repl: Repl, arg: str) -> None:
    from kimicode.frontends.common.integrations import skills_lines

    for line, style in skills_lines(repl.runtime.skills, repl.config):
        repl.renderer.listing(line, style)


@slash("mcp", "show the MCP servers: state, source, tools")
async def _mcp(repl: Repl, arg: str) -> None:
    from kimicode.frontends.common.integrations import mcp_lines

    for line, style in mcp_lines(repl.mcp, repl.config):
        repl.renderer.listing(line, style)
