"""Bringing the MCP servers of other agents and editors into kimicode: what is new, how it is shown,
and the one-question offer the interactive first run makes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from kimicode.config import Config
from kimicode.discovery.mcp_configs import McpDiscovery, find_mcp_servers
from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import ImportReport, McpStoreError, import_servers, load_servers, save_servers, store_path


def discover(workspace: Path, home: Path | None = None) -> McpDiscovery:
    return find_mcp_servers(workspace, home or Path.home())


def new_servers(found: list[McpServerConfig], kimicode_home: Path) -> list[McpServerConfig]:
    """The found servers kimicode does not have yet (same settings under any name count as had)."""
    stored = load_servers(kimicode_home)
    fresh: list[McpServerConfig] = []
    for server in found:
        if any(s.same_server(server) for s in [*stored, *fresh]):
            continue
        fresh.append(server)
    return fresh


def describe_found(servers: list[McpServerConfig]) -> list[str]:
    """One line per server: name, transport, what runs or where, and the file it came from."""
    width = max((len(s.name) for s in servers), default=0)
    lines = []
    for server in servers:
        state = "" if server.enabled else " (disabled there)"
        lines.append(f"  {server.name:<{width}}  {server.transport:<5}  {server.describe()}{state}  [{server.source}]")
    return lines


def describe_report(report: ImportReport, kimicode_home: Path) -> list[str]:
    lines = [f"imported {len(report.added)} MCP server(s) into {store_path(kimicode_home)}"]
    for server in report.added:
        lines.append(f"  + {server.name}")
    for server, why in report.skipped:
        lines.append(f"  = {server.name}: {why}")
    return lines


def first_run_mcp_offer(
    config: Config,
    ask: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
    home: Path | None = None,
) -> list[McpServerConfig]:
    """On the first interactive run (no KIMICODE_HOME/mcp.json yet), offer the servers other agents use.

    Shows what was found and imports the user's own servers on one "yes". The project's servers (its
    .mcp.json and the like) are only named: someone else may have written them, so they are never copied
    into the user's list; they run in this folder only, once it is trusted. Either answer writes mcp.json,
    so the offer is made once; when no user server is found nothing is written and nothing is asked.
    Returns the servers added.
    """
    if store_path(config.home).exists():
        return []
    discovery = discover(config.work_dir, home)
    project = discovery.project_servers()
    if project:
        where = "they run here" if config.trusted else "they run only once you trust this folder (`kimicode trust`)"
        out.write(f"This project configures {len(project)} MCP server(s) of its own; {where}, never elsewhere:\n")
        out.write("\n".join(describe_found(project)) + "\n")
    servers = discovery.user_servers()
    if not servers:
        out.flush()
        return []
    out.write(f"Found {len(servers)} MCP server(s) configured for other agents and editors:\n")
    out.write("\n".join(describe_found(servers)) + "\n")
    out.flush()
    try:
        answer = ask(f"Import them into {store_path(config.home)}? [Y/n] ").strip().lower()
    except (EOFError, KeyboardInterrupt):
        answer = "n"
    try:
        if answer in ("", "y", "yes"):
            report = import_servers(config.home, servers)
            out.write("\n".join(describe_report(report, config.home)) + "\n")
            return report.added
        save_servers(config.home, [])  # remember the answer: do not ask again
        out.write("Not imported. Run `kimicode mcp import` any time to import them.\n")
    except (McpStoreError, OSError) as exc:
        out.write(f"kimicode: could not save MCP servers: {exc}\n")
    return []
