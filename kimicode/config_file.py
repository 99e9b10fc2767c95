"""One config.toml read and checked: the keys it may set, their types, and its [permissions] rules.

Invariants:
- Unknown keys are passed over (they belong to other features or newer versions); a known key of the wrong
  type, a bad enum value or a malformed rule is a ConfigError naming the file and key, never a traceback.
- Folders named in a project's file are relative to the project; in the user's file, to the home folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

SANDBOX_MODES = ("read-only", "workspace-write", "off")  # strictest first
RULE_KINDS = ("allow", "ask", "deny")
ESCALATION_MODES = ("ask", "auto")  # strictest first
# `tool(pattern)`, or a bare tool name that may be a glob (`mcp__github__*`).
RULE_SYNTAX = re.compile(r"[A-Za-z0-9_$*?\-]+(\(.+\))?", re.DOTALL)  # "$": a provider builtin ($web_search)

Rule = tuple[str, str]  # (kind, rule text)


class ConfigError(Exception):
    """A configuration problem the user must fix; the CLI prints it as one line and exits 2."""


# Keys a config.toml may set, with the type each must have.
_FILE_KEYS: dict[str, type] = {
    "api_key": str,
    "base_url": str,
    "model": str,
    "mode": str,
    "yolo": bool,
    "max_steps": int,
    "thinking_style": str,
    "context_window": int,
    "max_output_tokens": int,
    "max_retries": int,
    "retry_base_delay": float,
    "video_input": str,
    "video_max_frames": int,
    "video_token_budget": int,
    "request_timeout": float,
    "stream_stall_timeout": float,
    "swarm_concurrency": int,
    "swarm_max_agents": int,
    "swarm_max_tool_calls": int,
    "swarm_max_steps": int,
    "swarm_isolation": str,
    "mcp_startup_wait": float,
    "sandbox": str,
    "sandbox_network": bool,
    "sandbox_sockets": list,
    "pass_env": list,
    "add_dirs": list,
    "escalation": str,
    "notify_after": float,
    "hyperlink_format": str,
}


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from exc


def parse_file(data: dict[str, Any], path: Path) -> tuple[dict[str, Any], list[Rule]]:
    """The known keys of one config.toml, type-checked, and its [permissions] rules, syntax-checked."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        expected = _FILE_KEYS.get(key)
        if expected is None:
            continue  # unknown keys belong to other features (mcp, skills ...) or newer versions
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: '{key}' must be a {expected.__name__}, got {value!r}")
        values[key] = value
    if "sandbox" in values and values["sandbox"] not in SANDBOX_MODES:
        raise ConfigError(f"{path}: sandbox must be one of {', '.join(SANDBOX_MODES)}, got {values['sandbox']!r}")
    sockets = values.get("sandbox_sockets", [])
    if not all(isinstance(v, str) and v.startswith("/") for v in sockets):
        raise ConfigError(f"{path}: sandbox_sockets must be a list of absolute socket paths, got {sockets!r}")
    if "add_dirs" in values:
        if not all(isinstance(v, str) and v.strip() for v in values["add_dirs"]):
            raise ConfigError(f"{path}: add_dirs must be a list of folder paths, got {values['add_dirs']!r}")
        values["add_dirs"] = [_folder(v, path.parent.parent if path.parent.name == ".kimicode" else None) for v in values["add_dirs"]]
    if "escalation" in values and values["escalation"] not in ESCALATION_MODES:
        raise ConfigError(f"{path}: escalation must be one of {', '.join(ESCALATION_MODES)}, got {values['escalation']!r}")
    if "pass_env" in values and not all(isinstance(v, str) and v for v in values["pass_env"]):
        raise ConfigError(f"{path}: pass_env must be a list of environment variable names, got {values['pass_env']!r}")
    return values, parse_rules(data.get("permissions"), path)


def _folder(text: str, base: Path | None) -> Path:
    """A folder named in a config file: ``~`` expanded; relative to the project for a project's file."""
    path = Path(os.path.expanduser(text.strip()))
    if not path.is_absolute():
        path = (base or Path.home()) / path
    return Path(os.path.normpath(path))


def parse_rules(table: Any, path: Path) -> list[Rule]:
    if table is None:
        return []
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [permissions] must be a table with allow, ask and deny lists")
    rules: list[Rule] = []
    for kind in RULE_KINDS:
        entries = table.get(kind, [])
        if not isinstance(entries, list):
            raise ConfigError(f"{path}: [permissions] {kind} must be a list of rules such as \"bash(git status)\"")
        for entry in entries:
            if not isinstance(entry, str) or not valid_rule(entry):
                raise ConfigError(
                    f"{path}: [permissions] {kind} entry {entry!r} is not a rule: write tool(pattern) such as "
                    "bash(npm test *), or a tool name such as mcp__github__*"
                )
            rules.append((kind, entry.strip()))
    return rules


def valid_rule(text: str) -> bool:
    return bool(RULE_SYNTAX.fullmatch(text.strip()))
