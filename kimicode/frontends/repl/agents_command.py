"""`/agents`: the custom agents this session can run (name, source, tools, model) and what was skipped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SlashCommand

if TYPE_CHECKING:
    from kimicode.extensions.agents import AgentCatalog
    from kimicode.frontends.repl.control import ReplControl


def agents_lines(catalog: AgentCatalog, trusted: bool) -> list[tuple[str, str]]:
    """(line, style) pairs: each agent, then shadowed and invalid files."""
    lines: list[tuple[str, str]] = []
    if not catalog.agents:
        lines.append(("  no custom agents (.kimicode/agents/, .claude/agents/, ~/.claude/agents/, .codex/agents/)", "dim"))
    width = max((len(agent.name) for agent in catalog.agents), default=0)
    for agent in catalog.agents:
        tools = ", ".join(agent.tools) if agent.tools is not None else "all tools"
        model = f" · model {agent.model}" if agent.model else ""
        lines.append((f"  {agent.name:<{width}}  {agent.source} · {tools}{model}", ""))
        lines.append((f"  {'':<{width}}  {agent.description[:120]}", "dim"))
    for loser, winner in catalog.shadowed:
        lines.append((f"  shadowed: {loser.name} ({loser.path}) by {winner.source}", "dim"))
    for path, reason in catalog.invalid:
        lines.append((f"  invalid: {path}: {reason}", "yellow"))
    if not trusted:
        lines.append(("  the project's own agents load once the folder is trusted", "dim"))
    return lines


async def _agents(repl: ReplControl, arg: str) -> None:
    from kimicode.agent.agent_catalog import find_run_agents

    catalog = repl.runtime.agents
    if catalog is None:  # a mode without agents: still say what there is
        catalog = find_run_agents(repl.config.work_dir, repl.config.home, repl.config.trusted)
    for line, style in agents_lines(catalog, repl.config.trusted):
        repl.renderer.listing(line, style)


COMMAND = SlashCommand("agents", "list the custom agents (name, source, tools)", _agents)
