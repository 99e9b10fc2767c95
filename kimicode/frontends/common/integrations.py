"""What /skills and /mcp show: the skills found and the MCP servers of this session, as (line, style) pairs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.config import Config
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.discovery.skills import SkillCatalog
    from kimicode.mcp.manager import McpManager, ServerStatus
    from kimicode.mcp.server_config import McpServerConfig

Line = tuple[str, str]  # (text, rich style)
AGENT_MODES = ("agent", "swarm")


def skills_lines(catalog: SkillCatalog | None, config: Config) -> list[Line]:
    """Name, source and SKILL.md path of each skill; then the shadowed and the invalid ones."""
    if catalog is None:  # this mode does not offer skills; still show what would be offered
        from kimicode.agent.skill_catalog import find_skills

        catalog = find_skills(config.work_dir, config.home)
    lines: list[Line] = []
    if config.mode not in AGENT_MODES:
        lines.append((f"(skills are offered to the model in agent and swarm modes; now in {config.mode})", "dim"))
    if not catalog.skills:
        lines.append(("no skills found (put SKILL.md folders in .agents/skills or ~/.kimicode/skills)", "dim"))
    name_width = max((len(skill.name) for skill in catalog.skills), default=0)
    source_width = max((len(skill.source) for skill in catalog.skills), default=0)
    for skill in catalog.skills:
        lines.append((f"  {skill.name:<{name_width}}  {skill.source:<{source_width}}  {skill.path}", ""))
    if catalog.shadowed:
        lines.append(("shadowed (a skill of the same name above wins):", "dim"))
        for loser, winner in catalog.shadowed:
            lines.append((f"  {loser.name}  {loser.source}  {loser.path}  (shadowed by {winner.source})", "dim"))
    if catalog.invalid:
        lines.append(("invalid (skipped):", "yellow"))
        for path, reason in catalog.invalid:
            lines.append((f"  {path}: {reason}", "yellow"))
    return lines


def mcp_lines(manager: McpManager | None, config: Config) -> list[Line]:
    """Each configured server: name, transport, state (with its tool count or its failure), source."""
    from kimicode.mcp.store import McpStoreError, load_servers, store_path

    try:
        servers = load_servers(config.home)
    except McpStoreError as exc:
        return [(f"✗ {exc}", "red")]
    if not servers:
        return [(f"no MCP servers in {store_path(config.home)} (add one with `kimicode mcp add`, or `kimicode mcp import`)", "dim")]
    running = {status.name: status for status in manager.status()} if manager is not None else {}
    lines: list[Line] = []
    if config.mode not in AGENT_MODES:
        lines.append((f"(MCP tools are offered to the model in agent and swarm modes; now in {config.mode})", "dim"))
    width = max(len(server.name) for server in servers)
    for server in servers:
        status = running.get(server.name)
        state, style = _state(status) if server.enabled else ("disabled", "dim")
        source = server.source or "kimicode"
        signed = _sign_in(config.home, server)  # who is signed in, for a server that signs in with OAuth
        lines.append((f"  {server.name:<{width}}  {server.transport:<5}  {state:<18}  [{source}]{signed}", style))
        if status is not None and status.state == "failed":
            lines.append((f"      {status.error} (log: {status.log_path})", "red"))
    return lines


def _sign_in(home: Path, server: McpServerConfig) -> str:
    from kimicode.mcp.oauth import sign_in_label

    state = sign_in_label(home, server)
    return f"  {state}" if state else ""


def _state(status: ServerStatus | None) -> tuple[str, str]:
    if status is None:
        return "not started", "dim"
    if status.state == "ready":
        return f"ready ({plural(status.tool_count, 'tool')})", "green"
    if status.state == "failed":
        return "failed", "red"
    return status.state, "yellow"
