"""Custom slash commands: prompt templates the user (or the project) keeps as files, in kimicode's own folders
and in the layouts Claude Code, Codex and Gemini CLI use, so commands written for those work unchanged.

Where they are read from, first found wins when two share a name:

1. the project's ``.kimicode/commands/``, ``.claude/commands/``, ``.gemini/commands/`` (project over user:
   the repository's ``/review`` is the one its team means);
2. the user's ``KIMICODE_HOME/commands/`` (``~/.kimicode/commands/``), ``~/.claude/commands/``,
   ``~/.gemini/commands/``, ``~/.codex/prompts/`` (within one scope kimicode's own folder comes first);
3. enabled plugins' ``commands/``, always named ``plugin:command`` (so they never take another's name).

A built-in REPL command always wins over any of these (the front end leaves the custom one out).

Markdown files (``*.md``) may start with front matter (``description``, ``argument-hint``,
``allowed-tools``, ``model``); Gemini's ``*.toml`` files give ``prompt`` and ``description``. A sub-folder is
a namespace: ``frontend/review.md`` is ``/frontend:review``. Reading a file never runs anything: what a
template does when used is kimicode.extensions.commands_expand.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from kimicode.discovery.frontmatter import FrontmatterError, parse_frontmatter, split_frontmatter
from kimicode.extensions.plugin_index import InstalledPlugin, enabled_plugins

MAX_FILE_BYTES = 64_000  # a prompt template; anything larger is not one
MAX_COMMANDS_PER_FOLDER = 500
MAX_DEPTH = 4  # namespaces nest this deep at most
# One entry of an ``allowed-tools`` line: "Read", "Bash(git status:*)", "mcp__server__tool".
_TOOL_ENTRY = re.compile(r"[A-Za-z_][\w.-]*(?:\([^)]*\))?")


@dataclass(frozen=True)
class CommandFolder:
    path: Path
    style: str  # "markdown" or "gemini" (its *.toml files)
    source: str  # how /help names where a command came from
    project: bool
    prefix: str = ""  # a plugin's name and a colon
    # A project's files must really be inside it: a link out (to ~/.ssh/id_rsa) would send that file to the
    # model as a prompt. Your own folders may link where you like.
    within: Path | None = None


@dataclass(frozen=True)
class CustomCommand:
    name: str  # without the slash: "review", "frontend:review", "plugin:cmd"
    template: str
    path: Path
    source: str
    project: bool
    style: str = "markdown"
    description: str = ""
    argument_hint: str = ""
    allowed_tools: tuple[str, ...] = ()
    model: str = ""

    @property
    def summary(self) -> str:
        """One line for lists: the description, or the template's first line."""
        if self.description:
            return self.description
        first = next((line.strip() for line in self.template.splitlines() if line.strip()), "")
        return first[:80]


@dataclass
class CommandCatalog:
    commands: dict[str, CustomCommand] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one line per file that could not be read

    def get(self, name: str) -> CustomCommand | None:
        return self.commands.get(name)

    def __len__(self) -> int:
        return len(self.commands)


def command_folders(
    workspace: Path, kimicode_home: Path, user_home: Path, plugins: Iterable[InstalledPlugin] = ()
) -> list[CommandFolder]:
    """Every folder commands are read from, in precedence order (the module's docstring)."""
    folders = [
        CommandFolder(workspace / ".kimicode" / "commands", "markdown", "project .kimicode/commands", True, "", workspace),
        CommandFolder(workspace / ".claude" / "commands", "markdown", "project .claude/commands", True, "", workspace),
        CommandFolder(workspace / ".gemini" / "commands", "gemini", "project .gemini/commands", True, "", workspace),
        CommandFolder(kimicode_home / "commands", "markdown", f"user {_tilde(kimicode_home / 'commands', user_home)}", False),
        CommandFolder(user_home / ".claude" / "commands", "markdown", "user ~/.claude/commands", False),
        CommandFolder(user_home / ".gemini" / "commands", "gemini", "user ~/.gemini/commands", False),
        CommandFolder(user_home / ".codex" / "prompts", "markdown", "user ~/.codex/prompts", False),
    ]
    for plugin in plugins:
        folders.append(CommandFolder(plugin.root / "commands", "markdown", plugin.label, False, f"{plugin.name}:"))
    return folders


def find_commands(
    workspace: Path, kimicode_home: Path, user_home: Path | None = None, plugins: Iterable[InstalledPlugin] | None = None
) -> CommandCatalog:
    """The custom commands of this workspace and user; ``plugins`` defaults to the enabled ones."""
    user_home = Path.home() if user_home is None else user_home
    installed = enabled_plugins(kimicode_home) if plugins is None else plugins
    catalog = CommandCatalog()
    for folder in command_folders(workspace, kimicode_home, user_home, installed):
        for command in _read_folder(folder, catalog.problems):
            catalog.commands.setdefault(command.name, command)
    return catalog


def _read_folder(folder: CommandFolder, problems: list[str]) -> list[CustomCommand]:
    suffix = ".toml" if folder.style == "gemini" else ".md"
    found: list[CustomCommand] = []
    for path, parts in _files(folder.path, suffix):
        if len(found) >= MAX_COMMANDS_PER_FOLDER:
            problems.append(f"{folder.path}: more than {MAX_COMMANDS_PER_FOLDER} commands; the rest were left out")
            break
        name = folder.prefix + ":".join(parts)
        try:
            command = _read_file(path, name, folder)
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        found.append(command)
    return found


def _files(root: Path, suffix: str) -> list[tuple[Path, list[str]]]:
    """(file, name parts) under ``root``, sorted, hidden entries left out, ``MAX_DEPTH`` folders deep at most
    (a link that loops ends there; where a project's link leads is checked as the file is read)."""
    if not root.is_dir():
        return []
    found: list[tuple[Path, list[str]]] = []

    def walk(directory: Path, parts: list[str]) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and len(parts) < MAX_DEPTH:
                walk(Path(entry.path), [*parts, entry.name])
            elif entry.name.endswith(suffix) and entry.is_file() and len(entry.name) > len(suffix):
                stem = entry.name[: -len(suffix)]
                if ":" not in stem and " " not in stem:
                    found.append((Path(entry.path), [*parts, stem]))

    walk(root, [])
    return found


def _read_file(path: Path, name: str, folder: CommandFolder) -> CustomCommand:
    if folder.within is not None:
        root, real = folder.within.resolve(), path.resolve()
        if root not in real.parents:
            raise ValueError(f"leads to {real}, outside the workspace; not read")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // 1000} KB; not read as a command")
    text = path.read_text(encoding="utf-8", errors="replace")
    base = partial(CustomCommand, name=name, path=path, source=folder.source, project=folder.project)
    if folder.style == "gemini":
        table = tomllib.loads(text)
        prompt = table.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("no 'prompt' string")
        return base(template=prompt, style="gemini", description=_text(table.get("description")))
    try:
        block, body = split_frontmatter(text)
    except FrontmatterError:
        return base(template=text)  # no front matter: the whole file is the template
    try:
        meta = parse_frontmatter(block)
    except FrontmatterError as exc:
        raise ValueError(f"front matter: {exc}") from None
    tools = meta.get("allowed-tools")
    listed = tools if isinstance(tools, list) else _TOOL_ENTRY.findall(_text(tools))
    return base(
        template=body.lstrip("\n"),
        description=_text(meta.get("description")),
        argument_hint=_text(meta.get("argument-hint")),
        allowed_tools=tuple(str(tool).strip() for tool in listed if str(tool).strip()),
        model=_text(meta.get("model")),
    )


def _text(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return value.strip() if isinstance(value, str) else ""


def _tilde(path: Path, user_home: Path) -> str:
    try:
        return "~/" + path.relative_to(user_home).as_posix()
    except ValueError:
        return str(path)
