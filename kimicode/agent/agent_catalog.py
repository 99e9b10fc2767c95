"""Which custom agents a run offers, how the orchestrator is told of them, and what a named agent gets.

The orchestrator's prompt lists each agent by name and description only (bounded, like the skills): the
agent's own instructions reach only the agent that runs them. A named agent gets the tools its allowlist
names out of those it would have had anyway (never more), plus what it needs to finish (``submit``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.config import Config
from kimicode.extensions.agents import ALWAYS_TOOLS, AgentCatalog, AgentSpec, find_agents
from kimicode.llm.client import ChatClient
from kimicode.tools.base import Tool

if TYPE_CHECKING:
    from kimicode.llm.setup import ModelSetup

# A description longer than this is cut in the list (the agent's file has it whole).
CATALOG_DESCRIPTION_CHARS = 300
MAX_SECTION_CHARS = 3000


def find_run_agents(workspace: Path, kimicode_home: Path, trusted: bool, home: Path | None = None) -> AgentCatalog:
    """The agents of a run: project ones only in a trusted folder."""
    return find_agents(workspace, home or Path.home(), kimicode_home, trusted)


def agents_section(catalog: AgentCatalog) -> str:
    """The orchestrator's bounded list of named agents (empty when there are none)."""
    if not catalog.agents:
        return ""
    header = (
        "## Named agents\n"
        "Besides ad-hoc sub-agents you can run these named agents: give a spawn_agents entry `agent: NAME` "
        "and it runs with that agent's own instructions and tools (still give it a complete task).\n"
    )
    lines: list[str] = []
    used = len(header)
    for index, agent in enumerate(catalog.agents):
        description = " ".join(agent.description.split())
        if len(description) > CATALOG_DESCRIPTION_CHARS:
            description = description[: CATALOG_DESCRIPTION_CHARS - 1].rstrip() + "…"
        line = f"- {agent.name} — {description}"
        left = len(catalog.agents) - index - 1
        if used + len(line) + 1 + (80 if left else 0) > MAX_SECTION_CHARS:
            omitted = len(catalog.agents) - index
            lines.append(f"({omitted} more agent{'s' if omitted != 1 else ''} not listed: the list is full)")
            break
        lines.append(line)
        used += len(line) + 1
    return header + "\n".join(lines) + "\n"


def agent_instructions(agent: AgentSpec) -> str:
    """The section a named agent's system prompt gains: its own instructions."""
    body = agent.prompt.strip() or agent.description
    return f"# Agent: {agent.name}\n\n{body}\n"


def allowed_tools(tools: dict[str, Tool], agent: AgentSpec | None) -> dict[str, Tool]:
    """``tools`` narrowed to what ``agent`` allows (all of them for no agent or no allowlist)."""
    if agent is None:
        return tools
    return {name: tool for name, tool in tools.items() if _allowed(agent, tool)}


def _allowed(agent: AgentSpec, tool: Tool) -> bool:
    if not agent.allows(tool.name):
        return False
    # A read-only stance keeps what changes nothing; spawn_agents is "read-only" only for approvals.
    return not agent.read_only or tool.name in ALWAYS_TOOLS or (tool.read_only and tool.name != "spawn_agents")


def allowed_extras(
    extras: Callable[[], list[Tool]] | None, agent: AgentSpec | None
) -> Callable[[], list[Tool]] | None:
    """Late-joining tools (MCP servers) narrowed the same way, asked afresh on every step."""
    if extras is None or agent is None or (agent.tools is None and not agent.read_only):
        return extras
    named = agent

    def narrowed() -> list[Tool]:
        return [tool for tool in extras() if _allowed(named, tool)]

    return narrowed


def unknown_agent_line(name: str, catalog: AgentCatalog) -> str:
    known = ", ".join(catalog.names()) or "none"
    return f"no agent named '{name}' (known: {known})"


@dataclass
class AgentSetup:
    """The custom agents of one run: what was found, the one ``--agent`` names, and clients for named
    sub-agents' own models (made on first use, closed with the run)."""

    catalog: AgentCatalog | None = None
    main: AgentSpec | None = None
    clients: dict[str, ChatClient] = field(default_factory=dict)

    @classmethod
    def find(cls, config: Config, agent_modes: tuple[str, ...]) -> AgentSetup:
        if config.mode not in agent_modes and not config.agent:
            return cls()
        catalog = find_run_agents(config.work_dir, config.home, config.trusted)
        return cls(catalog, catalog.get(config.agent) if config.agent else None)

    def orchestrator_sections(self) -> list[str]:
        return [agents_section(self.catalog)] if self.catalog is not None else []

    def for_swarm(self, config: Config, model: ModelSetup) -> tuple[dict[str, AgentSpec], Callable[[str], ChatClient]]:
        """What a swarm needs to run the named agents: them by name, and a client for a model of their own."""
        named = {agent.name: agent for agent in self.catalog.agents} if self.catalog is not None else {}

        def client_for(name: str) -> ChatClient:
            if name not in self.clients:
                own = dataclasses.replace(config, model=name)
                setup = model.for_model(own)
                self.clients[name] = ChatClient(own, setup.profile, setup.endpoint, setup.store)
            return self.clients[name]

        return named, client_for


def chosen_agent(config: Config, flags: dict[str, object]) -> str:
    """``--agent NAME``: "" when the agent exists (its model, unless -m named one, becomes the run's, in
    ``config`` and in ``flags`` for a rebuilt config), else the one line saying which agents there are."""
    catalog = find_run_agents(config.work_dir, config.home, config.trusted)
    agent = catalog.get(config.agent)
    if agent is None:
        line = unknown_agent_line(config.agent, catalog)
        if not config.trusted and find_run_agents(config.work_dir, config.home, True).get(config.agent):
            line += "; the project's agent of that name loads once the folder is trusted (--trust, kimicode trust)"
        return line
    if agent.model and not flags.get("model"):
        config.model = flags["model"] = agent.model
    return ""
