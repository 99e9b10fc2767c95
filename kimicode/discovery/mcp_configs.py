"""Find the MCP servers the user configured for other agents and editors, in kimicode's normal form.

Nine formats are read: Claude Desktop, Claude Code, Cursor, VS Code, Zed, Windsurf, Gemini CLI, Codex and
Kimi CLI. The project's own files (``.mcp.json``, ``.cursor/mcp.json``, ``.vscode/mcp.json``, Zed's and
Gemini's project settings, and kimicode's ``.kimicode/mcp.json``) are project-scoped: someone else may have
written them, so they are never copied into the user's list and run only in a trusted folder. Everything takes ``home`` (and ``platform``) explicitly so it can be pointed at any folder.
A file that is missing is skipped silently; a file that cannot be parsed is reported in ``problems``
rather than raising, because one broken editor config must never stop kimicode from starting.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kimicode import jsontext
from kimicode.discovery.jsonc import loads_jsonc
from kimicode.discovery.skills import find_project_root
from kimicode.mcp.server_config import (
    McpServerConfig,
    config_from_entry,
    expand_placeholders,
    expand_vars,
)

__all__ = [
    "McpDiscovery",
    "McpServerConfig",
    "discover_mcp_servers",
    "expand_vars",
    "find_mcp_servers",
    "find_plugin_mcp_servers",
    "find_project_mcp_servers",
    "project_mcp_files",
]


@dataclass
class McpDiscovery:
    servers: list[McpServerConfig] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (file, one-line reason)
    files_read: list[Path] = field(default_factory=list)
    project_files: list[Path] = field(default_factory=list)  # the project-scoped files among those read

    def is_project(self, server: McpServerConfig) -> bool:
        """True for a server found in one of the project's own files (project-scoped)."""
        return server.source in {str(path) for path in self.project_files}

    def user_servers(self) -> list[McpServerConfig]:
        return [s for s in self.servers if not self.is_project(s)]

    def project_servers(self) -> list[McpServerConfig]:
        return [s for s in self.servers if self.is_project(s)]


def _app_config_dir(home: Path, platform: str) -> Path:
    """Where desktop apps keep per-user settings on each OS."""
    if platform == "darwin":
        return home / "Library" / "Application Support"
    if platform.startswith("win"):
        return home / "AppData" / "Roaming"
    return home / ".config"


def discover_mcp_servers(workspace: Path, home: Path, platform: str = sys.platform) -> list[McpServerConfig]:
    """Every MCP server found, project files first; identical entries found twice are listed once."""
    return find_mcp_servers(workspace, home, platform).servers


Reader = Callable[[Any, str], Iterable[McpServerConfig]]


def _project_readers(workspace: Path) -> list[tuple[Path, Reader]]:
    project = find_project_root(workspace)
    return [
        (workspace.resolve() / ".kimicode" / "mcp.json", _read_mcp_servers),
        (project / ".mcp.json", _read_mcp_servers),
        (project / ".cursor" / "mcp.json", _read_mcp_servers),
        (project / ".vscode" / "mcp.json", _read_vscode),
        (project / ".zed" / "settings.json", _read_zed),
        (project / ".gemini" / "settings.json", _read_gemini),
    ]


def project_mcp_files(workspace: Path) -> list[Path]:
    """The project's own MCP files, present or not (what workspace trust fingerprints)."""
    return [path for path, _ in _project_readers(workspace)]


def find_mcp_servers(workspace: Path, home: Path, platform: str = sys.platform) -> McpDiscovery:
    """Like discover_mcp_servers, and also says which files were read and which could not be parsed."""
    project = find_project_root(workspace)
    app_dir = _app_config_dir(home, platform)
    readers: list[tuple[Path, Reader]] = [
        # Project-level files first: they are the most specific to this workspace.
        *_project_readers(workspace),
        # User-level files.
        (home / ".claude.json", lambda data, source: _read_claude_code_user(data, source, project, workspace)),
        (app_dir / "Claude" / "claude_desktop_config.json", _read_mcp_servers),
        (home / ".cursor" / "mcp.json", _read_mcp_servers),
        (app_dir / "Code" / "User" / "mcp.json", _read_vscode),
        (_zed_settings_path(home, platform), _read_zed),
        (home / ".codeium" / "windsurf" / "mcp_config.json", _read_mcp_servers),
        (home / ".gemini" / "settings.json", _read_gemini),
        (home / ".codex" / "config.toml", _read_codex),
        (home / ".kimi" / "mcp.json", _read_mcp_servers),
    ]
    return _read_all(readers, workspace, home, project_mcp_files(workspace))


class ReadFiles(Protocol):
    """Files read once, by path (None: absent or unreadable), as workspace trust read them to fingerprint
    (kimicode.security.trust.ProjectFiles); named here by what it holds, so discovery needs no trust."""

    @property
    def data(self) -> Mapping[Path, bytes | None]: ...


def find_project_mcp_servers(workspace: Path, files: ReadFiles | None = None) -> McpDiscovery:
    """Only the servers the project's own files configure (none of the user's). ``files``: the project
    files as read for the trust check; their bytes are parsed, not the files read again."""
    snapshot = files.data if files is not None else None
    if snapshot is not None:
        workspace = workspace.resolve()  # as the snapshot names its files
    return _read_all(_project_readers(workspace), workspace, Path.home(), project_mcp_files(workspace), snapshot)


def find_plugin_mcp_servers(kimicode_home: Path) -> McpDiscovery:
    """The servers of the enabled plugins' ``.mcp.json`` files, ``${CLAUDE_PLUGIN_ROOT}`` and
    ``${KIMICODE_PLUGIN_ROOT}`` expanded to each plugin's folder. Installing a plugin trusted it, so these
    need no folder trust; they are never copied into the user's list (disabling the plugin stops them)."""
    from kimicode.extensions.plugin_index import enabled_plugins
    from kimicode.extensions.plugins import manifest_path, root_placeholders

    result = McpDiscovery()
    for plugin in enabled_plugins(kimicode_home):
        files = [plugin.root / ".mcp.json", manifest_path(plugin.root)]  # plugin.json may list them inline
        readers: list[tuple[Path, Reader]] = [(path, _read_mcp_servers) for path in files if path is not None]
        found = _read_all(readers, plugin.root, Path.home(), [])
        result.problems += found.problems
        result.files_read += found.files_read
        for server in found.servers:
            server = _with_placeholders(server, root_placeholders(plugin.root))
            server.source = f"{plugin.label} ({server.source})"
            if not any(s.name == server.name for s in result.servers):
                result.servers.append(server)
    return result


def _read_all(
    readers: list[tuple[Path, Reader]],
    workspace: Path,
    home: Path,
    project_files: list[Path],
    snapshot: Mapping[Path, bytes | None] | None = None,
) -> McpDiscovery:
    result = McpDiscovery()
    placeholders = {"workspaceFolder": str(find_project_root(workspace)), "userHome": str(home)}
    for path, reader in readers:
        known = snapshot is not None and path in snapshot
        recorded = snapshot.get(path) if snapshot is not None else None
        if (recorded is None) if known else not path.is_file():
            continue
        try:
            data = _parse(path, recorded) if recorded is not None else _load(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            result.problems.append((path, f"cannot parse {path}: {_one_line(exc)}"))
            continue
        result.files_read.append(path)
        if path in project_files:
            result.project_files.append(path)
        if not isinstance(data, dict):
            result.problems.append((path, f"{path}: expected an object at the top level"))
            continue
        for server in reader(data, str(path)):
            server = _with_placeholders(server, placeholders)
            if not any(s.name == server.name and s.same_server(server) for s in result.servers):
                result.servers.append(server)
    return result


def _zed_settings_path(home: Path, platform: str) -> Path:
    if platform.startswith("win"):
        return home / "AppData" / "Roaming" / "Zed" / "settings.json"
    return home / ".config" / "zed" / "settings.json"


def _load(path: Path) -> Any:
    return _parse(path, path.read_bytes())


def _parse(path: Path, data: bytes) -> Any:
    text = data.decode("utf-8")
    if path.suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    try:
        return jsontext.loads(text)
    except json.JSONDecodeError:
        return loads_jsonc(text)  # comments and trailing commas (Zed, VS Code)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _with_placeholders(server: McpServerConfig, placeholders: Mapping[str, str]) -> McpServerConfig:
    """Expand path placeholders now (they depend on where the file was found); env refs stay for launch."""

    def fix(text: str) -> str:
        return expand_placeholders(text, placeholders)

    server.command = fix(server.command)
    server.args = [fix(a) for a in server.args]
    server.env = {k: fix(v) for k, v in server.env.items()}
    server.cwd = fix(server.cwd)
    server.url = fix(server.url)
    server.headers = {k: fix(v) for k, v in server.headers.items()}
    return server


def _entries(table: Any, source: str) -> Iterable[McpServerConfig]:
    if not isinstance(table, dict):
        return []
    found: list[McpServerConfig] = []
    for name, entry in table.items():
        if isinstance(entry, dict):
            config = config_from_entry(str(name), entry, source)
            if config is not None:
                found.append(config)
    return found


def _read_mcp_servers(data: dict[str, Any], source: str) -> Iterable[McpServerConfig]:
    """Claude Desktop, Claude Code .mcp.json, Cursor, Windsurf (serverUrl) and Kimi CLI."""
    return _entries(data.get("mcpServers"), source)


def _read_claude_code_user(
    data: dict[str, Any], source: str, project: Path, workspace: Path
) -> Iterable[McpServerConfig]:
    """~/.claude.json: user-wide ``mcpServers`` plus ``projects[<path>].mcpServers`` for this project."""
    found = list(_entries(data.get("mcpServers"), source))
    projects = data.get("projects")
    if isinstance(projects, dict):
        wanted = {str(project), str(workspace.resolve()), str(workspace)}
        for key, settings in projects.items():
            if isinstance(settings, dict) and str(Path(key)) in wanted:
                found.extend(_entries(settings.get("mcpServers"), f"{source}#projects[{key}]"))
    return found


def _read_vscode(data: dict[str, Any], source: str) -> Iterable[McpServerConfig]:
    """VS Code mcp.json: key ``servers`` (``type`` stdio/http/sse); ``inputs`` prompts are not supported."""
    return _entries(data.get("servers"), source)


def _read_zed(data: dict[str, Any], source: str) -> Iterable[McpServerConfig]:
    """Zed settings.json ``context_servers``: ``command: {path, args, env}`` or the flat command/args shape."""
    table = data.get("context_servers")
    if not isinstance(table, dict):
        return []
    found: list[McpServerConfig] = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            continue
        command = entry.get("command")
        if isinstance(command, dict):
            flat = {
                "command": command.get("path") or command.get("command"),
                "args": command.get("args"),
                "env": command.get("env"),
            }
            if entry.get("enabled") is False:
                flat["enabled"] = False
            entry = flat
        config = config_from_entry(str(name), entry, source)
        if config is not None:
            found.append(config)
    return found


def _read_gemini(data: dict[str, Any], source: str) -> Iterable[McpServerConfig]:
    """Gemini CLI settings.json: ``url`` is SSE and ``httpUrl`` streamable HTTP."""
    table = data.get("mcpServers")
    if not isinstance(table, dict):
        return []
    adjusted: dict[str, Any] = {}
    for name, entry in table.items():
        if isinstance(entry, dict) and "url" in entry and "httpUrl" not in entry and "type" not in entry:
            entry = {**entry, "type": "sse"}
        adjusted[name] = entry
    return _entries(adjusted, source)


def _read_codex(data: dict[str, Any], source: str) -> Iterable[McpServerConfig]:
    """Codex config.toml ``[mcp_servers.NAME]``: command/args/env/cwd, or url with http_headers."""
    return _entries(data.get("mcp_servers"), source)
