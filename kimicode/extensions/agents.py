"""Custom agents: named sub-agents the user already wrote for Claude Code, Codex or kimicode.

An agent is a Markdown file whose front matter says ``name``, ``description``, ``tools`` (an allowlist, a
comma string or a list; Claude Code's tool names are read as kimicode's) and ``model``, and whose body is
its instructions; or a Codex ``.codex/agents/*.toml`` with ``name``, ``description``, ``instructions``
(or ``developer_instructions``), ``tools`` and ``model``.

Precedence, highest first: the project's folders (only in a trusted folder: someone else may have written
them), kimicode's home, the user's home, then enabled plugins' ``agents/``. The first agent of a name wins;
later ones are kept in ``shadowed``. A file that cannot be read is reported in ``invalid``, never raised:
one broken agent must not stop a run.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.discovery.frontmatter import FrontmatterError, parse_frontmatter, split_frontmatter

PROJECT_AGENT_DIRS: tuple[str, ...] = (".kimicode/agents", ".claude/agents", ".codex/agents")
USER_AGENT_DIRS: tuple[str, ...] = (".claude/agents", ".codex/agents")

# Claude Code's tool names, read as kimicode's. Grep and Glob search and list files: kimicode has no search
# tool, and view (which lists folders and reads files) is the closest that stays read-only; granting bash
# for them would widen the agent. Tools with no kimicode counterpart (Task, NotebookEdit ...) are dropped.
TOOL_ALIASES: dict[str, tuple[str, ...]] = {
    "bash": ("bash",),
    "write": ("createfile",),
    "edit": ("strreplace", "insert"),
    "multiedit": ("strreplace", "insert"),
    "read": ("view",),
    "webfetch": ("fetch",),
    "websearch": ("$web_search",),
    "grep": ("view",),
    "glob": ("view",),
    "ls": ("view",),
    "todowrite": ("todo",),
}
DROPPED_TOOLS = frozenset({"task", "notebookedit", "notebookread", "exitplanmode", "killshell", "bashoutput"})
# What every named agent has whatever its allowlist says: it must be able to hand its result back.
ALWAYS_TOOLS: tuple[str, ...] = ("submit",)
# Claude Code's model aliases name Anthropic models; on a Kimi endpoint they mean "the run's model".
INHERIT_MODELS = frozenset({"", "inherit", "sonnet", "opus", "haiku", "default"})

# The permission stance: Claude Code's permissionMode, Codex's sandbox_mode. Only a narrowing one takes
# effect (read-only tools); a widening one (bypassPermissions, acceptEdits) is read and ignored: an agent
# file never loosens what the user's settings ask for.
STANCE_KEYS: tuple[str, ...] = ("permissionMode", "permission-mode", "permission_mode", "sandbox_mode")
READ_ONLY_STANCES = frozenset({"plan", "read-only", "readonly"})
KNOWN_STANCES = READ_ONLY_STANCES | {"default", "ask", "acceptedits", "bypasspermissions", "workspace-write",
                                     "danger-full-access", "auto-edit", "dontask"}

MAX_AGENT_FILE_BYTES = 256_000


@dataclass(frozen=True)
class AgentSpec:
    name: str
    description: str
    prompt: str  # the body: added to the base system prompt of the agent that runs it
    source: str  # e.g. "project:.claude/agents", "user:~/.claude/agents", "plugin demo"
    path: Path
    tools: tuple[str, ...] | None = None  # kimicode tool names or patterns; None: every tool it would get
    model: str = ""  # "" runs on the run's model
    read_only: bool = False  # its permission stance: only tools that change nothing (and no spawning)

    def allows(self, tool_name: str) -> bool:
        if self.tools is None or tool_name in ALWAYS_TOOLS:
            return True
        return any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in self.tools)


@dataclass
class AgentCatalog:
    agents: list[AgentSpec] = field(default_factory=list)
    shadowed: list[tuple[AgentSpec, AgentSpec]] = field(default_factory=list)  # (loser, winner)
    invalid: list[tuple[Path, str]] = field(default_factory=list)

    def get(self, name: str) -> AgentSpec | None:
        return next((agent for agent in self.agents if agent.name == name), None)

    def names(self) -> list[str]:
        return [agent.name for agent in self.agents]


def agent_dirs(
    workspace: Path, home: Path, kimicode_home: Path, trusted: bool, plugins: list[tuple[str, Path]] | None = None
) -> list[tuple[Path, str]]:
    """Every folder that may hold agents, in precedence order, with its source label. ``plugins``: (name,
    root) of the enabled plugins."""
    from kimicode.discovery.skills import find_project_root

    dirs: list[tuple[Path, str]] = []
    if trusted:
        project = find_project_root(workspace)
        for base in dict.fromkeys((workspace.resolve(), project)):
            dirs.extend((base / rel, f"project:{rel}") for rel in PROJECT_AGENT_DIRS)
    dirs.append((kimicode_home / "agents", "kimicode-home"))
    dirs.extend((home / rel, f"user:~/{rel}") for rel in USER_AGENT_DIRS)
    dirs.extend((root / "agents", f"plugin {name}") for name, root in plugins or [])
    seen: set[Path] = set()
    unique: list[tuple[Path, str]] = []
    for folder, label in dirs:
        key = folder.resolve() if folder.exists() else folder
        if key not in seen:
            seen.add(key)
            unique.append((folder, label))
    return unique


def find_agents(workspace: Path, home: Path, kimicode_home: Path, trusted: bool) -> AgentCatalog:
    from kimicode.extensions.plugin_index import enabled_plugins

    plugins = [(plugin.name, plugin.root) for plugin in enabled_plugins(kimicode_home)]
    catalog = AgentCatalog()
    winners: dict[str, AgentSpec] = {}
    for folder, source in agent_dirs(workspace, home, kimicode_home, trusted, plugins):
        for path in _agent_files(folder):
            try:
                agent = load_agent(path, source)
            except (FrontmatterError, OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
                catalog.invalid.append((path, " ".join(str(exc).split()) or type(exc).__name__))
                continue
            winner = winners.get(agent.name)
            if winner is not None:
                catalog.shadowed.append((agent, winner))
                continue
            winners[agent.name] = agent
            catalog.agents.append(agent)
    return catalog


def _agent_files(folder: Path) -> list[Path]:
    try:
        children = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return []
    return [child for child in children if child.suffix in (".md", ".toml") and child.is_file()]


def load_agent(path: Path, source: str) -> AgentSpec:
    """One agent file; raises FrontmatterError/ValueError with a one-line reason when it is not an agent."""
    if path.stat().st_size > MAX_AGENT_FILE_BYTES:
        raise ValueError(f"larger than {MAX_AGENT_FILE_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any]
    if path.suffix == ".toml":
        data = tomllib.loads(text)
        body = data.get("developer_instructions", data.get("instructions", data.get("prompt", "")))
    else:
        block, body = split_frontmatter(text)
        data = parse_frontmatter(block)
    name = _text(data.get("name")) or path.stem
    description = _text(data.get("description"))
    if not description:
        raise FrontmatterError("no description (the orchestrator picks agents by it)")
    if not all(c.isalnum() or c in "-_." for c in name):
        raise FrontmatterError(f"name {name!r} may hold only letters, digits, '-', '_' and '.'")
    tools = data.get("tools", data.get("allowed-tools"))
    model = _text(data.get("model"))
    stance = next((_text(data.get(key)) for key in STANCE_KEYS if key in data), "")
    if stance and stance.lower() not in KNOWN_STANCES:
        raise FrontmatterError(f"unknown permission stance {stance!r} (kimicode knows {', '.join(sorted(KNOWN_STANCES))})")
    return AgentSpec(
        name=name,
        description=description,
        prompt=_text(body),
        source=source,
        path=path,
        tools=None if tools is None or tools == "" else kimicode_tools(tools),
        model="" if model.lower() in INHERIT_MODELS else model,
        read_only=stance.lower() in READ_ONLY_STANCES,
    )


def kimicode_tools(value: Any) -> tuple[str, ...]:
    """An allowlist in kimicode's tool names: a comma (or space) string or a list; aliases mapped, tools with
    no counterpart dropped. ``*`` alone means every tool."""
    words = value if isinstance(value, list) else _split_tools(str(value))
    names: list[str] = []
    for word in (str(w).strip() for w in words):
        base = word.split("(", 1)[0].strip()  # Claude's "Bash(git *)" narrows bash; bash it is
        if not base or base.lower() in DROPPED_TOOLS:
            continue
        for name in TOOL_ALIASES.get(base.lower(), (base,)):
            if name not in names:
                names.append(name)
    return tuple(names)


def _split_tools(text: str) -> list[str]:
    """Words split at commas and spaces outside parentheses: ``Bash(git *), Read`` is two tools."""
    words: list[str] = []
    current, depth = "", 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth <= 0 and (char == "," or char.isspace()):
            words.append(current)
            current, depth = "", 0
        else:
            current += char
    return [word for word in [*words, current] if word.strip()]


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value).strip()
    return str(value).strip() if isinstance(value, (str, int, float)) else ""
