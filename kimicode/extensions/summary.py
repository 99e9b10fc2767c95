"""The one line that says what extensions were found ("3 hooks, 5 commands, 2 agents, 1 plugin"), and the
same counts as the ``extensions`` object of stream-json's init event.

Each loader counts its own kind; what this module cannot count itself is passed in ``counts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

KINDS = ("hooks", "commands", "agents", "plugins")
_SINGULAR = {"hooks": "hook", "commands": "command", "agents": "agent", "plugins": "plugin"}


def extension_counts(
    workspace: Path,
    kimicode_home: Path,
    user_home: Path | None = None,
    counts: Mapping[str, int] | None = None,
    trusted: bool = False,
) -> dict[str, int]:
    """How many of each kind: what ``counts`` gives as it is (the hooks loader counts its own), the commands,
    agents (the project's only when ``trusted``) and plugins counted here when it does not give them, any
    other kind 0."""
    from kimicode.extensions.agents import find_agents
    from kimicode.extensions.commands import find_commands
    from kimicode.extensions.plugin_index import enabled_plugins

    given = dict(counts or {})
    found = {kind: 0 for kind in KINDS}
    if "plugins" not in given or "commands" not in given:
        plugins = enabled_plugins(kimicode_home)
        found["plugins"] = len(plugins)
        if "commands" not in given:
            found["commands"] = len(find_commands(workspace, kimicode_home, user_home, plugins))
    if "agents" not in given:
        found["agents"] = len(find_agents(workspace, user_home or Path.home(), kimicode_home, trusted).agents)
    found.update(given)
    return found


def extensions_line(counts: Mapping[str, int]) -> str:
    """"3 hooks, 5 commands, 1 plugin"; empty when nothing was found."""
    parts = []
    for kind in (*KINDS, *(kind for kind in counts if kind not in KINDS)):
        number = counts.get(kind, 0)
        if number:
            parts.append(f"{number} {_SINGULAR.get(kind, kind) if number == 1 else kind}")
    return ", ".join(parts)
