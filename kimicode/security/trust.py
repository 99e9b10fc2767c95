"""Workspace trust: which folders may change what kimicode is allowed to do.

A repository can carry settings (``.kimicode/config.toml``, ``.mcp.json`` and the other editors' MCP files)
that widen what the agent may do or where data goes: ``yolo``, another endpoint, allow rules, MCP servers;
and extensions that run its code or widen an agent (hooks in ``.claude/settings.json``, custom commands and
agents: ``project_extension_files``).
Those apply only in a folder the user trusts. The user's decision lives in ``KIMICODE_HOME/trust.json``
(never in the project), keyed by the resolved workspace path and tied to a fingerprint of the project files,
so a file changed after the decision makes the folder untrusted again.

``trust.json``::

    {"version": 1, "workspaces": {"/abs/path": {"decision": "trusted" | "ignored" | "",
                                               "config_hash": "<sha256>", "rules": ["bash(npm test *)"]}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kimicode import jsontext
from kimicode.jsonfile import write_json_atomic

TRUST_FILE = "trust.json"

# The project's config file; with the project's MCP files (kimicode.discovery.mcp_configs) and its extension
# files (project_extension_files) its bytes make the fingerprint.
PROJECT_CONFIG = ".kimicode/config.toml"


# "" when only rules were saved so far (or trust.json holds a value this version does not know).
TrustDecision = Literal["trusted", "ignored", ""]


@dataclass
class TrustRecord:
    decision: TrustDecision
    config_hash: str = ""
    rules: list[str] = field(default_factory=list)


def _decision(value: object) -> TrustDecision:
    if value == "trusted":
        return "trusted"
    return "ignored" if value == "ignored" else ""


def _key(workspace: Path) -> str:
    return str(workspace.expanduser().resolve())


class TrustStore:
    """The user's trust decisions and saved rules, one entry per workspace."""

    def __init__(self, home: Path) -> None:
        self.path = home / TRUST_FILE

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            # Missing or unreadable: no decisions, which is the safe reading (nothing is trusted).
            return {}
        table = data.get("workspaces") if isinstance(data, dict) else None
        return table if isinstance(table, dict) else {}

    def _save(self, table: dict[str, Any]) -> None:
        write_json_atomic(self.path, {"version": 1, "workspaces": table}, private=True, sort_keys=True)

    def record(self, workspace: Path) -> TrustRecord | None:
        entry = self._load().get(_key(workspace))
        if not isinstance(entry, dict):
            return None
        rules = entry.get("rules")
        return TrustRecord(
            decision=_decision(entry.get("decision")),
            config_hash=str(entry.get("config_hash") or ""),
            rules=[str(r) for r in rules] if isinstance(rules, list) else [],
        )

    def set(self, workspace: Path, trusted: bool, config_hash: str) -> None:
        table = self._load()
        entry = table.get(_key(workspace))
        entry = entry if isinstance(entry, dict) else {}
        entry.update(decision="trusted" if trusted else "ignored", config_hash=config_hash)
        table[_key(workspace)] = entry
        self._save(table)

    def revoke(self, workspace: Path) -> None:
        """Forget everything about the folder: the decision and the rules saved for it."""
        table = self._load()
        if table.pop(_key(workspace), None) is not None:
            self._save(table)

    def add_rule(self, workspace: Path, rule: str) -> None:
        table = self._load()
        entry = table.get(_key(workspace))
        entry = entry if isinstance(entry, dict) else {"decision": ""}
        saved = entry.get("rules")
        rules: list[Any] = saved if isinstance(saved, list) else []
        if rule not in rules:
            rules.append(rule)
        entry["rules"] = rules
        table[_key(workspace)] = entry
        self._save(table)

    def rules(self, workspace: Path) -> list[str]:
        record = self.record(workspace)
        return record.rules if record else []

    def is_trusted(self, workspace: Path, files: ProjectFiles | None = None) -> bool:
        """A stored "trusted" whose fingerprint still matches the project files (``files``: as already read,
        the bytes the caller goes on to load)."""
        record = self.record(workspace)
        if not (record and record.decision == "trusted"):
            return False
        return record.config_hash == (files or ProjectFiles(workspace)).fingerprint()


def fingerprinted_files(workspace: Path) -> list[Path]:
    """Every file that takes part in the fingerprint: the settings files, present or not, and the project's
    extension files (``project_extension_files``) that are there."""
    from kimicode.discovery.mcp_configs import project_mcp_files

    workspace = workspace.resolve()
    settings = [workspace / PROJECT_CONFIG, *project_mcp_files(workspace)]
    return list(dict.fromkeys([*settings, *project_extension_files(workspace)]))


def _base_files(workspace: Path) -> set[Path]:
    from kimicode.discovery.mcp_configs import project_mcp_files

    return {workspace / PROJECT_CONFIG, *project_mcp_files(workspace)}


# The project's extensions (hooks, custom commands, custom agents) in kimicode's and other agents' layouts:
# they run the project's code or widen what an agent may do, so they load only in a trusted folder and a
# change to any of them asks again. Settings files are fingerprinted where they are; folders, every regular
# file in them (links are not followed, nothing but a regular file is ever opened).
EXTENSION_SETTINGS = (
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".gemini/settings.json",
    ".codex/hooks.json",
    ".codex/config.toml",
)
EXTENSION_FOLDERS = (
    ".kimicode/commands",
    ".claude/commands",
    ".gemini/commands",
    ".kimicode/agents",
    ".claude/agents",
    ".codex/agents",
)
# Bounds on what a start reads for them: more files, or more bytes in all, than a team writes by hand are
# left out (and so neither fingerprinted nor loaded).
MAX_EXTENSION_FILES = 500
MAX_EXTENSION_BYTES = 8 * 1024 * 1024
_MAX_DEPTH = 6


def project_extension_files(workspace: Path) -> list[Path]:
    """The project's extension files that are there (regular files, found without following a link),
    in a stable order, at most ``MAX_EXTENSION_FILES``. What loaders of project extensions may read: the
    bytes to load are ``ProjectFiles.data[path]`` (None or missing: leave it out)."""
    workspace = workspace.resolve()
    found = [workspace / name for name in EXTENSION_SETTINGS if _is_regular(workspace / name)]
    for name in EXTENSION_FOLDERS:
        folder = workspace / name
        if not _plain_folder(folder, workspace):
            continue
        for root, dirs, files in os.walk(folder):  # never follows a link to a folder
            depth = len(Path(root).relative_to(folder).parts)
            dirs[:] = sorted(d for d in dirs if depth < _MAX_DEPTH)
            for file in sorted(files):
                path = Path(root) / file
                if _is_regular(path, follow=False):
                    found.append(path)
                if len(found) >= MAX_EXTENSION_FILES:
                    return found
    return found


def _is_regular(path: Path, follow: bool = True) -> bool:
    try:
        return stat.S_ISREG(os.stat(path, follow_symlinks=follow).st_mode)
    except (OSError, ValueError):
        return False


def _plain_folder(folder: Path, workspace: Path) -> bool:
    """A real folder inside the workspace: no link on the way to it (a link could lead anywhere)."""
    current = workspace
    for part in folder.relative_to(workspace).parts:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return False
        except OSError:
            return False
    return True


class ProjectFiles:
    """The project files that can widen, each read once: the fingerprint and the loaders use these very
    bytes, so a file changed (or created and removed) between the trust check and the load is never
    loaded unchecked. ``None`` stands for a file that was absent or unreadable; an extension file that
    cannot be read (or is over the bounds) is not in ``data`` at all."""

    def __init__(self, workspace: Path) -> None:
        workspace = workspace.resolve()
        base = _base_files(workspace)
        self.data: dict[Path, bytes | None] = {}
        total = 0
        for path in fingerprinted_files(workspace):
            data = _read_regular(path)
            if path not in base:
                if data is None or total + len(data) > MAX_EXTENSION_BYTES:
                    continue  # absent extension files leave the fingerprint as it was before they existed
                total += len(data)
            self.data[path] = data

    def fingerprint(self) -> str:
        """sha256 over each file's name and bytes (absent ones count as absent)."""
        digest = hashlib.sha256()
        for path, data in self.data.items():
            digest.update(str(path).encode() + b"\0")
            if data is None:
                digest.update(b"absent\0")
            else:
                digest.update(len(data).to_bytes(8, "big") + data)
        return digest.hexdigest()


# Project settings are small; a bigger "config" is not read whole at every start.
MAX_PROJECT_FILE_BYTES = 4 * 1024 * 1024


def _read_regular(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of sane size (else None, as if absent): a FIFO or a
    device named like a config file must not hang every start in the folder (it is stat-ed, then opened
    non-blocking and checked again)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        parts: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            parts.append(chunk)
            size += len(chunk)
            if size > MAX_PROJECT_FILE_BYTES:
                return None  # not a settings file anyone wrote by hand: neither trusted nor loaded
        return b"".join(parts)
    except OSError:
        return None
    finally:
        os.close(fd)


def project_fingerprint(workspace: Path) -> str:
    """sha256 over the project files that can widen (name and bytes of each; absent ones count as absent)."""
    return ProjectFiles(workspace).fingerprint()


def project_mcp_lines(workspace: Path, files: ProjectFiles | None = None) -> list[str]:
    """One line per MCP server the project's own files configure (they run only in a trusted folder)."""
    from kimicode.discovery.mcp_configs import find_project_mcp_servers

    servers = find_project_mcp_servers(workspace, files).servers
    return [*(f"MCP server {s.name}: {s.describe()}" for s in servers), *project_extension_lines(workspace, files)]


def project_extension_lines(workspace: Path, files: ProjectFiles | None = None) -> list[str]:
    """One line per kind of project extension that loads only once the folder is trusted."""
    workspace = workspace.resolve()
    data = (files or ProjectFiles(workspace)).data
    lines: list[str] = []
    for name in (PROJECT_CONFIG, *EXTENSION_SETTINGS):
        if _has_hooks(data.get(workspace / name), toml=name.endswith(".toml")):
            lines.append(f"hooks in {name}")
    for name in EXTENSION_FOLDERS:
        count = sum(1 for path in data if path.is_relative_to(workspace / name))
        if count:
            lines.append(f"{count} file{'s' if count > 1 else ''} in {name}/")
    return lines


def _has_hooks(raw: bytes | None, toml: bool = False) -> bool:
    try:
        parsed = (tomllib.loads(raw.decode()) if toml else jsontext.loads(raw)) if raw is not None else None
    except ValueError:  # the loaders say what is wrong with it (TOMLDecodeError and UnicodeError are ValueErrors)
        return False
    return isinstance(parsed, dict) and bool(parsed.get("hooks"))
