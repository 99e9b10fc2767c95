"""TASKS.jsonl: one task per line (DESIGN.md B.12), with defaults from the command line."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kimicode.config import MODES

# Ids name a folder under OUT: keep them to characters every file system takes.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FIELDS = ("id", "task", "repo", "ref", "setup", "check", "mode", "max_steps", "images")


class TaskFileError(Exception):
    """TASKS.jsonl cannot be used; the message names the line."""


@dataclass
class TaskSpec:
    id: str
    task: str
    repo: str  # a git URL, or a local path (absolute once loaded)
    ref: str = ""  # "" = the repository's current HEAD
    setup: str = ""
    check: str = ""
    mode: str = ""  # "" = the agent's default
    max_steps: int | None = None
    images: list[str] = field(default_factory=list)
    timeout: float = 1800.0  # seconds for the whole task: checkout, setup, agent, check
    # `kimicode batch --allow-escalation` only (never a task line): the agent gets --allow-escalation.
    allow_escalation: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Defaults:
    repo: str = ""
    ref: str = ""
    setup: str = ""
    check: str = ""
    mode: str = ""
    max_steps: int | None = None
    timeout: float = 1800.0
    allow_escalation: bool = False


def is_url(repo: str) -> bool:
    return "://" in repo or re.match(r"^[\w.-]+@[\w.-]+:", repo) is not None


def load_tasks(path: Path, defaults: Defaults) -> list[TaskSpec]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TaskFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    specs: list[TaskSpec] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise TaskFileError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise TaskFileError(f"{where}: a task is a JSON object")
        spec = _spec(raw, defaults, where, path.parent)
        if spec.id in seen:
            raise TaskFileError(f"{where}: id '{spec.id}' is used twice")
        seen.add(spec.id)
        specs.append(spec)
    return specs


def _spec(raw: dict[str, Any], defaults: Defaults, where: str, base: Path) -> TaskSpec:
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise TaskFileError(f"{where}: unknown field(s) {', '.join(unknown)}; a task has {', '.join(_FIELDS)}")
    task_id = raw.get("id")
    if not isinstance(task_id, str) or not _ID.match(task_id):
        raise TaskFileError(f"{where}: 'id' must be a string of letters, digits, '.', '_' or '-'")
    task = raw.get("task")
    if not isinstance(task, str) or not task.strip():
        raise TaskFileError(f"{where}: 'task' must be a non-empty string")
    text = {name: raw.get(name, getattr(defaults, name)) for name in ("repo", "ref", "setup", "check", "mode")}
    for name, value in text.items():
        if not isinstance(value, str):
            raise TaskFileError(f"{where}: '{name}' must be a string")
    if not text["repo"]:
        raise TaskFileError(f"{where}: no 'repo' (give one per task or --repo)")
    if text["mode"] and text["mode"] not in MODES:
        raise TaskFileError(f"{where}: unknown mode '{text['mode']}': use one of {', '.join(MODES)}")
    max_steps = raw.get("max_steps", defaults.max_steps)
    if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1):
        raise TaskFileError(f"{where}: 'max_steps' must be a positive integer")
    images = raw.get("images", [])
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise TaskFileError(f"{where}: 'images' must be a list of paths")
    repo = text["repo"]
    if not is_url(repo):
        repo = str((base / Path(repo).expanduser()).resolve())
    return TaskSpec(
        id=task_id,
        task=task,
        repo=repo,
        ref=text["ref"],
        setup=text["setup"],
        check=text["check"],
        mode=text["mode"],
        max_steps=max_steps,
        images=[str((base / Path(i).expanduser()).resolve()) for i in images],
        timeout=defaults.timeout,
        allow_escalation=defaults.allow_escalation,
    )
