"""One config.toml read and checked: the keys it may set, their types, and its [permissions] rules.

Invariants:
- An unknown key changes nothing and costs one warning line naming the closest known key (``modle`` → did
  you mean ``model``?); a known key of the wrong type, a bad enum value or a malformed rule is a ConfigError
  naming the file and key, never a traceback.
- Folders named in a project's file are relative to the project; in the user's file, to the home folder.
"""

from __future__ import annotations

import difflib
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


# Tables other parts of kimicode read from config.toml themselves (hooks: DESIGN.md B.14).
TABLES = frozenset({"permissions", "hooks", "mcp", "mcp_servers", "prices"})
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
_PRICE_KEYS = ("input", "cached_input", "output")


def unknown_key_lines(data: dict[str, Any], path: Path, fields: set[str]) -> list[str]:
    """One warning line per top-level key nothing reads, with the closest known key when there is one.
    Known: the settings above, ``fields`` (the Config's own), and the tables other parts read."""
    known = set(_FILE_KEYS) | fields | TABLES
    lines = []
    for key in data:
        if key in known:
            continue
        close = closest(key, known)
        hint = f"did you mean '{close}'?" if close else "it is ignored"
        lines.append(f"{path}: unknown key '{key}' ({hint})")
    return lines


def closest(word: str, choices: set[str]) -> str | None:
    """The choice a typo most likely meant: fewest edits (a swap of two neighbours is one), then the same
    length (``modle`` is ``model``, not ``mode``); else difflib's best guess, if any."""
    scored = sorted((_edits(word, choice), abs(len(choice) - len(word)), choice) for choice in choices)
    if scored and scored[0][0] <= max(1, len(word) // 3):
        return scored[0][2]
    guesses = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return guesses[0] if guesses else None


def _edits(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours turning ``a`` into ``b``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def parse_prices(table: Any, path: Path) -> dict[str, tuple[float, float, float]]:
    """``[prices."MODEL"]`` with ``input``, ``output`` and optional ``cached_input`` in USD per million
    tokens: (input, cached input, output) by model name."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [prices] must hold one table per model, such as [prices.\"my-model\"]")
    prices: dict[str, tuple[float, float, float]] = {}
    for model, entry in table.items():
        if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
            raise ConfigError(f"{path}: [prices.\"{model}\"] needs input and output (USD per million tokens)")
        numbers: dict[str, float] = {}
        for key in _PRICE_KEYS:
            value = entry.get(key, entry["input"])
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{path}: [prices.\"{model}\"] {key} must be a number of 0 or more, got {value!r}")
            numbers[key] = float(value)
        extra = set(entry) - set(_PRICE_KEYS)
        if extra:
            raise ConfigError(f"{path}: [prices.\"{model}\"] has unknown keys {', '.join(sorted(extra))}: use input, cached_input, output")
        prices[str(model)] = (numbers["input"], numbers["cached_input"], numbers["output"])
    return prices


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
            continue  # tables other features read, or a key unknown_key_lines warns about
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: '{key}' must be {_TYPE_NAMES.get(expected, expected.__name__)}, got {value!r}")
        values[key] = value
    if "prices" in data:
        values["prices"] = parse_prices(data["prices"], path)
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
