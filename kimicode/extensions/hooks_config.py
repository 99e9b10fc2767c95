"""Where hooks are configured, read into one list: kimicode's config.toml (``[[hooks.EVENT]]``), Claude Code's
settings files (``hooks`` key), Gemini CLI's settings files and enabled plugins' ``hooks/hooks.json``.

Invariants:
- A project's own files (``.kimicode/config.toml``, ``.claude/settings*.json``, ``.gemini/settings.json``) give
  hooks only in a trusted folder, and then from the very bytes the trust fingerprint was taken of.
- A malformed file or entry is left out with one problem line; it never stops the run.
- Nothing here runs anything: running is kimicode.extensions.hooks_run.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode import jsontext

if TYPE_CHECKING:
    from kimicode.config import Config

EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Notification",
    "Stop",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
)
# Events whose matcher names tools; the others match everything.
TOOL_EVENTS = ("PreToolUse", "PostToolUse")
DEFAULT_TIMEOUT = 60.0
# More hooks than anyone writes by hand: the rest of a runaway file is left out.
MAX_HOOKS = 256
# Gemini CLI's event names for the same moments; its timeouts are in milliseconds.
GEMINI_EVENTS = {
    "SessionStart": "SessionStart",
    "SessionEnd": "SessionEnd",
    "BeforeAgent": "UserPromptSubmit",
    "AfterAgent": "Stop",
    "BeforeTool": "PreToolUse",
    "AfterTool": "PostToolUse",
    "PreCompress": "PreCompact",
    "Notification": "Notification",
}

# The project files hooks come from, relative to the workspace (all part of the trust fingerprint).
PROJECT_CLAUDE_SETTINGS = (".claude/settings.json", ".claude/settings.local.json")
PROJECT_GEMINI_SETTINGS = ".gemini/settings.json"
# Codex: a hooks.json in Claude Code's shape, or the same as [hooks] tables of its config.toml.
PROJECT_CODEX_HOOKS = (".codex/hooks.json", ".codex/config.toml")
# Keys of Codex's [hooks] table that are not events (its own record of which hooks the user reviewed).
CODEX_NOT_EVENTS = ("state",)
PROJECT_CONFIG = ".kimicode/config.toml"


@dataclass(frozen=True)
class HookSpec:
    event: str
    matcher: str  # "" matches everything
    command: str
    timeout: float
    source: str  # where it was configured, as /hooks shows it
    dialect: str = "kimicode"  # "kimicode" | "claude" | "gemini" | "codex": the tool names its script expects
    plugin_root: str = ""


@dataclass
class HookConfig:
    hooks: list[HookSpec]
    problems: list[str]


def _timeout(value: object, scale: float) -> float | None:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value) / scale


class _Reader:
    """Collects hooks and problem lines from every source, in order."""

    def __init__(self) -> None:
        self.hooks: list[HookSpec] = []
        self.problems: list[str] = []
        self.plugin_root = ""  # set while a plugin's hooks are read

    def add(self, spec: HookSpec) -> None:
        if len(self.hooks) < MAX_HOOKS:
            self.hooks.append(spec)
        elif len(self.hooks) == MAX_HOOKS:
            self.problems.append(f"more than {MAX_HOOKS} hooks; the rest ({spec.source}) are left out")

    def nested(self, table: object, source: str, dialect: str, expand: Callable[[str], str] = str) -> None:
        """Claude Code's (and Gemini CLI's) shape: {EVENT: [{"matcher": "...", "hooks": [{"type": "command",
        "command": "...", "timeout": 30}]}]}."""
        if table is None:
            return
        if not isinstance(table, dict):
            self.problems.append(f"{source}: hooks must be an object of events; left out")
            return
        for name, groups in table.items():
            if dialect == "codex" and name in CODEX_NOT_EVENTS:
                continue
            event = GEMINI_EVENTS.get(name) if dialect == "gemini" else name
            if event not in EVENTS:
                self.problems.append(f"{source}: unknown hook event {name!r}; left out")
                continue
            for group in groups if isinstance(groups, list) else [None]:
                entries = group.get("hooks") if isinstance(group, dict) else None
                matcher = group.get("matcher", "") if isinstance(group, dict) else None
                if not isinstance(entries, list) or not isinstance(matcher, str):
                    self.problems.append(f"{source}: {name} needs a list of {{matcher, hooks}} groups; left out")
                    continue
                for entry in entries:
                    self._entry(entry, event, matcher, source, dialect, expand)

    def _entry(
        self, entry: object, event: str, matcher: str, source: str, dialect: str, expand: Callable[[str], str]
    ) -> None:
        if not isinstance(entry, dict):
            self.problems.append(f"{source}: a {event} hook must be an object; left out")
            return
        command, kind = entry.get("command"), entry.get("type", "command")
        if kind != "command":
            self.problems.append(f"{source}: {event} hook of type {kind!r} is not supported; left out")
            return
        timeout = _timeout(entry.get("timeout"), 1000.0 if dialect == "gemini" else 1.0)
        if not isinstance(command, str) or not command.strip() or timeout is None:
            self.problems.append(f"{source}: {event} hook needs a command and a positive timeout; left out")
            return
        self.add(HookSpec(event, matcher, expand(command), timeout, source, dialect, self.plugin_root))

    def flat(self, table: object, source: str) -> None:
        """kimicode's config.toml shape: [[hooks.EVENT]] with matcher, command and timeout."""
        if table is None:
            return
        if not isinstance(table, dict):
            self.problems.append(f"{source}: [hooks] must be a table of events; left out")
            return
        for event, entries in table.items():
            if event not in EVENTS:
                self.problems.append(f"{source}: unknown hook event {event!r}; left out")
                continue
            for entry in entries if isinstance(entries, list) else [None]:
                matcher = entry.get("matcher", "") if isinstance(entry, dict) else None
                command = entry.get("command") if isinstance(entry, dict) else None
                timeout = _timeout(entry.get("timeout"), 1.0) if isinstance(entry, dict) else None
                if not isinstance(matcher, str) or not isinstance(command, str) or not command.strip() or not timeout:
                    self.problems.append(
                        f"{source}: [[hooks.{event}]] needs command = \"...\" (matcher and timeout optional); left out"
                    )
                    continue
                self.add(HookSpec(event, matcher, command, timeout, source))

    def json_file(self, data: bytes | None, source: str, dialect: str, expand: Callable[[str], str] = str) -> None:
        if data is None:
            return
        try:
            parsed = jsontext.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.problems.append(f"{source}: not valid JSON ({exc}); its hooks are left out")
            return
        if isinstance(parsed, dict):
            self.nested(parsed.get("hooks"), source, dialect, expand)

    def toml_file(self, data: bytes | None, source: str, dialect: str = "kimicode") -> None:
        if data is None:
            return
        try:
            parsed = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self.problems.append(f"{source}: not valid TOML ({exc}); its hooks are left out")
            return
        if dialect == "codex":  # [[hooks.EVENT]] groups with [[hooks.EVENT.hooks]] handlers
            self.nested(parsed.get("hooks"), source, dialect)
        else:
            self.flat(parsed.get("hooks"), source)

    def codex(self, files: tuple[bytes | None, bytes | None], prefix: str) -> None:
        """Codex's hooks.json and its config.toml's [hooks], as read from ``files``."""
        hooks_json, config_toml = files
        self.json_file(hooks_json, f"{prefix}.codex/hooks.json", "codex")
        self.toml_file(config_toml, f"{prefix}.codex/config.toml", "codex")


def _read(path: Path) -> bytes | None:
    from kimicode.security.trust import _read_regular

    return _read_regular(path)


def load_hooks(config: Config, user_home: Path | None = None) -> HookConfig:
    """Every hook this run has: the user's own (config.toml, ~/.claude, ~/.gemini, ~/.codex, enabled plugins) and, in a
    trusted folder, the project's."""
    from kimicode.extensions.plugin_index import enabled_plugins
    from kimicode.security.paths import user_home as default_user_home

    reader = _Reader()
    home = config.home
    user = user_home or default_user_home()
    reader.toml_file(_read(home / "config.toml"), "config.toml")
    reader.json_file(_read(user / ".claude" / "settings.json"), "~/.claude/settings.json", "claude")
    reader.json_file(_read(user / ".gemini" / "settings.json"), "~/.gemini/settings.json", "gemini")
    reader.codex((_read(user / ".codex" / "hooks.json"), _read(user / ".codex" / "config.toml")), "~/")
    for plugin in enabled_plugins(home):
        root = str(plugin.root)

        def expand(command: str, root: str = root) -> str:
            return command.replace("${CLAUDE_PLUGIN_ROOT}", root).replace("${KIMICODE_PLUGIN_ROOT}", root)

        reader.plugin_root = root
        reader.json_file(_read(plugin.root / "hooks" / "hooks.json"), plugin.label, "claude", expand)
        reader.plugin_root = ""
    if config.trusted:
        from kimicode.security.trust import ProjectFiles

        workspace = config.work_dir.resolve()
        files = (config.project_files or ProjectFiles(workspace)).data

        def project(relative: str) -> bytes | None:
            return files.get(workspace / relative)  # the very bytes trust was decided on

        reader.toml_file(project(PROJECT_CONFIG), PROJECT_CONFIG)
        for relative in PROJECT_CLAUDE_SETTINGS:
            reader.json_file(project(relative), relative, "claude")
        reader.json_file(project(PROJECT_GEMINI_SETTINGS), PROJECT_GEMINI_SETTINGS, "gemini")
        codex_json, codex_toml = PROJECT_CODEX_HOOKS
        reader.codex((project(codex_json), project(codex_toml)), "")
    return HookConfig(reader.hooks, reader.problems)


def describe(spec: HookSpec) -> dict[str, Any]:
    """One hook as /hooks lists it."""
    return {"event": spec.event, "matcher": spec.matcher or "*", "command": spec.command, "source": spec.source}
