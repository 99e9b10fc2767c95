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

    Shows what was found and imports it all on one "yes". Either answer writes mcp.json, so the offer is
    made once; when nothing is found nothing is written and nothing is asked. Returns the servers added.
    """
    if store_path(config.home).exists():
        return []
    discovery = discover(config.work_dir, home)
    if not discovery.servers:
        return []
    out.write(f"Found {len(discovery.servers)} MCP server(s) configured for other agents and editors:\n")
    out.write("\n".join(describe_found(discovery.servers)) + "\n")
    out.flush()
    try:
        answer = ask(f"Import them into {store_path(config.home)}? [Y/n] ").strip().lower()
    except (EOFError, KeyboardInterrupt):
        answer = "n"
    try:
        if answer in ("", "y", "yes"):
            report = import_servers(config.home, discovery.servers)
            out.write("\n".join(describe_report(report, config.home)) + "\n")
            return report.added
        save_servers(config.home, [])  # remember the answer: do not ask again
        out.write("Not imported. Run `kimicode mcp import` any time to import them.\n")
    except (McpStoreError, OSError) as exc:
        out.write(f"kimicode: could not save MCP servers: {exc}\n")
    return []
