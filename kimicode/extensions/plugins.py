"""A plugin's layout, read as data: Claude Code's (``.claude-plugin/plugin.json``) or kimicode's own
(``.kimicode-plugin/plugin.json``), with ``commands/``, ``agents/``, ``skills/``, ``hooks/hooks.json`` and
``.mcp.json`` beside the manifest folder. Reading never runs anything a plugin holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode import jsontext

MANIFEST_DIRS: tuple[str, ...] = (".kimicode-plugin", ".claude-plugin")
MANIFEST_FILE = "plugin.json"
MARKETPLACE_FILE = "marketplace.json"
# A plugin's name is a folder name under KIMICODE_HOME/plugins/ and part of its tools' names.
VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Placeholders a plugin's hook and server commands may use for the folder it was installed into.
ROOT_PLACEHOLDERS: tuple[str, ...] = ("KIMICODE_PLUGIN_ROOT", "CLAUDE_PLUGIN_ROOT")


class PluginError(ValueError):
    """A plugin (or marketplace) that cannot be read or installed; the message is one line for the user."""


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str = ""
    description: str = ""


@dataclass
class Contents:
    """What a plugin brings, by kind, as names a user recognises."""

    commands: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)  # event names
    mcp_servers: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        kinds = (("commands", self.commands), ("agents", self.agents), ("skills", self.skills),
                 ("hooks", self.hooks), ("mcp servers", self.mcp_servers))
        return [f"{kind}: {', '.join(names)}" for kind, names in kinds if names]


def manifest_path(root: Path) -> Path | None:
    for folder in MANIFEST_DIRS:
        path = root / folder / MANIFEST_FILE
        if path.is_file():
            return path
    return None


def read_manifest(root: Path) -> Manifest:
    """The plugin's manifest; raises PluginError when there is none or it is not a plugin's."""
    path = manifest_path(root)
    if path is None:
        raise PluginError(f"{root} is not a plugin: no {' or '.join(f'{d}/{MANIFEST_FILE}' for d in MANIFEST_DIRS)}")
    data = _json(path)
    if not isinstance(data, dict):
        raise PluginError(f"{path}: expected an object")
    name = data.get("name")
    if not isinstance(name, str) or not VALID_NAME.match(name):
        raise PluginError(f"{path}: 'name' must be letters, digits, '.', '_' or '-' (got {name!r})")
    return Manifest(name, _str(data.get("version")), _str(data.get("description")))


def read_contents(root: Path) -> Contents:
    """What the plugin at ``root`` brings (a missing or unreadable part is simply absent)."""
    contents = Contents()
    commands = root / "commands"
    if commands.is_dir():
        named: tuple[str, ...] = ()
        try:
            named = (read_manifest(root).name,)  # a plugin's commands are named /plugin:command
        except PluginError:
            pass
        for path in sorted(commands.rglob("*.md")):
            parts = path.relative_to(commands).with_suffix("").parts
            contents.commands.append("/" + ":".join((*named, *parts)))
    agents = root / "agents"
    if agents.is_dir():
        contents.agents = [path.stem for path in sorted(agents.iterdir()) if path.suffix in (".md", ".toml")]
    skills = root / "skills"
    if skills.is_dir():
        contents.skills = [path.name for path in sorted(skills.iterdir()) if (path / "SKILL.md").is_file()]
    hooks = _json_or_none(root / "hooks" / "hooks.json")
    table = hooks.get("hooks", hooks) if isinstance(hooks, dict) else None
    if isinstance(table, dict):
        contents.hooks = [str(event) for event in table]
    for server_file in (root / ".mcp.json", manifest_path(root)):  # plugin.json may list servers inline
        servers = _json_or_none(server_file) if server_file is not None else None
        table = servers.get("mcpServers") if isinstance(servers, dict) else None
        if isinstance(table, dict):
            contents.mcp_servers += [str(name) for name in table if str(name) not in contents.mcp_servers]
    return contents


def root_placeholders(root: Path) -> dict[str, str]:
    """``${CLAUDE_PLUGIN_ROOT}`` and ``${KIMICODE_PLUGIN_ROOT}``: the plugin's installed folder."""
    return {name: str(root) for name in ROOT_PLACEHOLDERS}


def _json(path: Path) -> Any:
    try:
        return jsontext.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PluginError(f"cannot read {path}: {' '.join(str(exc).split())}") from None


def _json_or_none(path: Path) -> Any:
    try:
        return _json(path) if path.is_file() else None
    except PluginError:
        return None


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
