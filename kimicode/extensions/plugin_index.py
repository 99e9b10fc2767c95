"""The record of installed plugins (``KIMICODE_HOME/plugins/plugins.json``), read by every loader that takes
something from a plugin (hooks, commands, agents, skills, MCP servers). Installing and enabling write it
(``kimicode plugin``); nothing here runs a plugin's code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PLUGINS_DIR = "plugins"
INDEX_FILE = "plugins.json"


@dataclass(frozen=True)
class InstalledPlugin:
    name: str
    root: Path  # the plugin's folder (its copy under KIMICODE_HOME/plugins/)
    enabled: bool
    source: str = ""  # where it was installed from: a path or a git URL

    @property
    def label(self) -> str:
        """How lists name where an extension came from."""
        return f"plugin {self.name}"


def index_path(home: Path) -> Path:
    return home / PLUGINS_DIR / INDEX_FILE


def installed_plugins(home: Path) -> list[InstalledPlugin]:
    """Every plugin in the record, in install order; a missing or unreadable record means none (a broken
    record must not stop kimicode from starting: ``kimicode plugin list`` says what is wrong)."""
    try:
        table = json.loads(index_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = table.get("plugins") if isinstance(table, dict) else None
    plugins: list[InstalledPlugin] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        name, root = entry.get("name"), entry.get("root")
        if not isinstance(name, str) or not isinstance(root, str) or not name:
            continue
        source = entry.get("source")
        plugins.append(InstalledPlugin(name, Path(root), entry.get("enabled") is not False,
                                       source if isinstance(source, str) else ""))
    return plugins


def enabled_plugins(home: Path) -> list[InstalledPlugin]:
    """The installed plugins whose folder still exists and that are not disabled."""
    return [plugin for plugin in installed_plugins(home) if plugin.enabled and plugin.root.is_dir()]
