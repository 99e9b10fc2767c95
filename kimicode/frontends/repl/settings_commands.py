"""Commands on how the agent runs and what it has: /mode, /model, /thinking, /yolo, /permissions, /cost,
/skills, /mcp."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SlashCommand
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl


async def _mode(repl: ReplControl, arg: str) -> None:
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


async def _model(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.repl.model_picker import choose_model, list_models

    await (choose_model(repl, arg) if arg else list_models(repl))


async def _thinking(repl: ReplControl, arg: str) -> None:
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


async def _yolo(repl: ReplControl, arg: str) -> None:
    policy = repl.agent.policy
    policy.yolo = not policy.yolo
    repl.config.yolo = policy.yolo
    repl.renderer.dim("yolo: every action runs without asking" if policy.yolo else "yolo off: actions ask again")


async def _permissions(repl: ReplControl, arg: str) -> None:
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


async def _cost(repl: ReplControl, arg: str) -> None:
    from kimicode.llm.prices import prices_known

    totals = repl.agent.totals
    cost = f" · ${totals.cost:.4f}" if prices_known(repl.config) else " · no prices known for this endpoint"
    repl.renderer.info(
        f"input {totals.prompt_tokens:,} tokens ({totals.cached_tokens:,} cached) · "
        f"output {totals.completion_tokens:,} tokens · {plural(totals.tool_calls, 'tool call')}{cost}"
    )


async def _skills(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.integrations import skills_lines

    for line, style in skills_lines(repl.runtime.skills, repl.config):
        repl.renderer.listing(line, style)


async def _mcp(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.integrations import mcp_lines

    for line, style in mcp_lines(repl.mcp, repl.config):
        repl.renderer.listing(line, style)


COMMANDS = (
    SlashCommand("mode", "show or set the mode", _mode, "[instant|thinking|agent|swarm]"),
    SlashCommand("model", "list the endpoint's models, or switch to one", _model, "[NAME]"),
    SlashCommand(
        "thinking",
        "turn thinking on or off; show, hide (collapse) or print the last one",
        _thinking,
        "[on|off|show|hide|last]",
    ),
    SlashCommand("yolo", "approve every action from now on (again to ask again)", _yolo, while_running=True),
    SlashCommand(
        "permissions", "list the permission rules in force and where each came from", _permissions, while_running=True
    ),
    SlashCommand("cost", "tokens and cost of this session", _cost, while_running=True),
    SlashCommand("skills", "list the skills found (name, source, path)", _skills),
    SlashCommand("mcp", "show the MCP servers: state, source, tools", _mcp),
)
