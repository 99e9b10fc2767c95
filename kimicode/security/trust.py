"""Workspace trust: which folders may change what kimicode is allowed to do.

A repository can carry settings (``.kimicode/config.toml``, ``.mcp.json`` and the other editors' MCP files)
that widen what the agent may do or where data goes: ``yolo``, another endpoint, allow rules, MCP servers.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kimicode.jsonfile import write_json_atomic

TRUST_FILE = "trust.json"

# The project's config file; with the project's MCP files (kimicode.discovery.mcp_configs) its bytes make
# the fingerprint.
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
    """Every file that takes part in the fingerprint, present or not."""
    from kimicode.discovery.mcp_configs import project_mcp_files

    workspace = workspace.resolve()
    return list(dict.fromkeys([workspace / PROJECT_CONFIG, *project_mcp_files(workspace)]))


class ProjectFiles:
    """The project files that can widen, each read once: the fingerprint and the loaders use these very
    bytes, so a file changed (or created and removed) between the trust check and the load is never
    loaded unchecked. ``None`` stands for a file that was absent or unreadable."""

    def __init__(self, workspace: Path) -> None:
        self.data: dict[Path, bytes | None] = {path: _read_regular(path) for path in fingerprinted_files(workspace)}

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

    return [f"MCP server {s.name}: {s.describe()}" for s in find_project_mcp_servers(workspace, files).servers]
