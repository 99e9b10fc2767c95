"""kimicode's own list of MCP servers: ``KIMICODE_HOME/mcp.json`` as ``{"mcpServers": {name: {...}}}``.

Import rule (idempotent): a found server whose exact settings are already stored, under any name, is
skipped; a found server whose name is taken by a different server is added under a suffixed name
(``github-2``, ``github-3`` ...), so nothing the user configured elsewhere is silently dropped and a
second import adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kimicode.jsonfile import write_json_atomic
from kimicode.mcp.server_config import McpServerConfig, config_from_entry

STORE_FILE = "mcp.json"


class McpStoreError(Exception):
    """kimicode's mcp.json cannot be read or the change cannot be made (message is one line)."""


@dataclass
class ImportReport:
    added: list[McpServerConfig] = field(default_factory=list)
    skipped: list[tuple[McpServerConfig, str]] = field(default_factory=list)  # (server, why)


def store_path(kimicode_home: Path) -> Path:
    return kimicode_home / STORE_FILE


def load_servers(kimicode_home: Path) -> list[McpServerConfig]:
    """The stored servers in file order; an absent file means none."""
    path = store_path(kimicode_home)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise McpStoreError(f"cannot read {path}: {' '.join(str(exc).split())}; fix or remove the file") from exc
    table = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        return []
    servers: list[McpServerConfig] = []
    for name, entry in table.items():
        if isinstance(entry, dict):
            config = config_from_entry(str(name), entry, str(entry.get("source") or ""))
            if config is not None:
                servers.append(config)
    return servers


def save_servers(kimicode_home: Path, servers: Iterable[McpServerConfig]) -> Path:
    """Write the whole list atomically (temp file + rename), keeping other top-level keys of the file."""
    path = store_path(kimicode_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, object] = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(existing, dict):
                document = existing
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            document = {}
    document["mcpServers"] = {server.name: server.to_json() for server in servers}
    write_json_atomic(path, document)
    return path


def import_servers(kimicode_home: Path, found: Iterable[McpServerConfig]) -> ImportReport:
    servers = load_servers(kimicode_home)
    report = ImportReport()
    for candidate in found:
        twin = next((s for s in servers if s.same_server(candidate)), None)
        if twin is not None:
            report.skipped.append((candidate, f"already configured as '{twin.name}'"))
            continue
        name = _free_name(candidate.name, {s.name for s in servers})
        added = McpServerConfig(**{**candidate.__dict__, "name": name})
        servers.append(added)
        report.added.append(added)
    if report.added:
        save_servers(kimicode_home, servers)
    return report


def _free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    number = 2
    while f"{name}-{number}" in taken:
        number += 1
    return f"{name}-{number}"


def add_server(kimicode_home: Path, server: McpServerConfig, replace: bool = False) -> None:
    """Add one server; an existing name is an error unless ``replace``."""
    servers = load_servers(kimicode_home)
    existing = [s for s in servers if s.name == server.name]
    if existing and not replace:
        raise McpStoreError(
            f"an MCP server named '{server.name}' already exists; remove it first or choose another name"
        )
    servers = [s for s in servers if s.name != server.name] + [server]
    save_servers(kimicode_home, servers)


def remove_server(kimicode_home: Path, name: str) -> McpServerConfig:
    """Remove and return the named server; an unknown name is an error listing the known ones."""
    servers = load_servers(kimicode_home)
    match = next((s for s in servers if s.name == name), None)
    if match is None:
        known = ", ".join(s.name for s in servers) or "none"
        raise McpStoreError(f"no MCP server named '{name}' (configured: {known})")
    save_servers(kimicode_home, [s for s in servers if s.name != name])
    return match
