"""The environment kimicode hands to the programs it starts: the model's commands and MCP servers.

The model's API keys stay with kimicode: a command the model runs (or a server a project names) has no
business with them, and a prompt-injected ``env | curl ...`` must not find them. A user whose own tools
need one of these variables names it in config.toml: ``pass_env = ["OPENAI_API_KEY"]`` (commands only;
an MCP server gets exactly the ``env`` values its own configuration gives it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# Keys for the model's endpoint; never inherited by a child unless passed on purpose.
WITHHELD = ("KIMI_API_KEY", "MOONSHOT_API_KEY", "OPENAI_API_KEY")


def command_env(extra: Mapping[str, str] | None = None, pass_env: Iterable[str] = ()) -> dict[str, str]:
    """kimicode's environment without the withheld keys (except those in ``pass_env``), plus ``extra``."""
    keep = set(pass_env)
    env = {k: v for k, v in os.environ.items() if k not in WITHHELD or k in keep}
    env.update(extra or {})
    return env


def server_env(configured: Mapping[str, str] | None) -> dict[str, str] | None:
    """The variables an MCP stdio server is given on top of the SDK's short safe list (HOME, PATH, USER,
    SHELL, TERM, LOGNAME): its own configured ``env`` and nothing else of ours."""
    return dict(configured) if configured else None
