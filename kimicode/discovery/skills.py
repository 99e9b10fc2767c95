"""Find the skills (SKILL.md folders) the user already has for any agent, and list them for the model.

Precedence, highest first: the project (git root of the workspace, else the workspace) before the user's
home, kimicode's own folders before other agents' folders, the built-in skills last. When two skills share
a name the first one found wins and the other is kept in ``shadowed`` so the user can see why.
Only name, description and the SKILL.md path reach the system prompt; the model reads a skill with `view`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.discovery.frontmatter import FrontmatterError, parse_frontmatter, split_frontmatter

SKILL_FILE = "SKILL.md"

# Folders (relative to the project root or the home) in precedence order.
PROJECT_SKILL_DIRS: tuple[str, ...] = (
    ".kimicode/skills",
    ".agents/skills",
    ".kimi/skills",
    ".claude/skills",
    ".codex/skills",
    ".cursor/skills",
    ".github/skills",
    ".gemini/skills",
)
USER_SKILL_DIRS: tuple[str, ...] = (
    ".kimicode/skills",
    ".agents/skills",
    ".config/agents/skills",
    ".kimi/skills",
    ".claude/skills",
    ".codex/skills",
    ".cursor/skills",
    ".github/skills",
    ".gemini/skills",
)

# A single description longer than this is cut in the catalog (the full text is in SKILL.md).
CATALOG_DESCRIPTION_CHARS = 300


@dataclass
class Skill:
    name: str
    description: str
    path: Path  # the SKILL.md file
    source: str  # e.g. "project:.claude/skills", "user:~/.codex/skills", "kimicode-home", "builtin"
    license: str = ""
    allowed_tools: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class SkillCatalog:
    skills: list[Skill] = field(default_factory=list)
    shadowed: list[tuple[Skill, Skill]] = field(default_factory=list)  # (loser, winner)
    invalid: list[tuple[Path, str]] = field(default_factory=list)  # (SKILL.md path, reason)

    def get(self, name: str) -> Skill | None:
        return next((skill for skill in self.skills if skill.name == name), None)


def find_project_root(workspace: Path) -> Path:
    """The git root containing the workspace (a ``.git`` dir or file), else the workspace itself."""
    start = workspace.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def skill_search_dirs(
    workspace: Path, home: Path, kimicode_home: Path, builtin_dir: Path | None
) -> list[tuple[Path, str]]:
    """Every folder that may hold skills, in precedence order, each with its source label."""
    project = find_project_root(workspace)
    dirs: list[tuple[Path, str]] = [(project / rel, f"project:{rel}") for rel in PROJECT_SKILL_DIRS]
    dirs.append((kimicode_home / "skills", "kimicode-home"))
    dirs.extend((home / rel, f"user:~/{rel}") for rel in USER_SKILL_DIRS)
    dirs.extend((root / "skills", label) for root, label in _plugin_dirs(kimicode_home))
    if builtin_dir is not None:
        dirs.append((builtin_dir, "builtin"))
    # The same folder can be reached twice (workspace == home, KIMICODE_HOME == ~/.kimicode): keep the first.
    seen: set[Path] = set()
    unique: list[tuple[Path, str]] = []
    for folder, label in dirs:
        key = folder.resolve() if folder.exists() else folder
        if key not in seen:
            seen.add(key)
            unique.append((folder, label))
    return unique


def _plugin_dirs(kimicode_home: Path) -> list[tuple[Path, str]]:
    """The enabled plugins' folders, each with its label (installing a plugin trusted it)."""
    from kimicode.extensions.plugin_index import enabled_plugins

    return [(plugin.root, plugin.label) for plugin in enabled_plugins(kimicode_home)]


def discover_skills(
    workspace: Path, home: Path, kimicode_home: Path, builtin_dir: Path | None = None
) -> SkillCatalog:
    catalog = SkillCatalog()
    winners: dict[str, Skill] = {}
    for folder, source in skill_search_dirs(workspace, home, kimicode_home, builtin_dir):
        for skill_file in _skill_files(folder):
            try:
                skill = load_skill(skill_file, source)
            except (FrontmatterError, OSError, UnicodeDecodeError) as exc:
                catalog.invalid.append((skill_file, str(exc)))
                continue
            winner = winners.get(skill.name)
            if winner is not None:
                catalog.shadowed.append((skill, winner))
                continue
            winners[skill.name] = skill
            catalog.skills.append(skill)
    return catalog


def _skill_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return []
    return [child / SKILL_FILE for child in children if child.is_dir() and (child / SKILL_FILE).is_file()]


def load_skill(skill_file: Path, source: str) -> Skill:
    """Read one SKILL.md. Raises FrontmatterError (with a one-line reason) if it is not a valid skill."""
    block, _body = split_frontmatter(skill_file.read_text(encoding="utf-8"))
    data = parse_frontmatter(block)
    name = _text(data.get("name"))
    description = _text(data.get("description"))
    missing = [key for key, value in (("name", name), ("description", description)) if not value]
    if missing:
        raise FrontmatterError(f"frontmatter has no {' or '.join(missing)}")
    return Skill(
        name=name,
        description=description,
        path=skill_file,
        source=source,
        license=_text(data.get("license")),
        allowed_tools=_tool_list(data.get("allowed-tools", data.get("allowed_tools"))),
        metadata=_string_map(data.get("metadata")),
    )


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value).strip()
    if isinstance(value, dict):
        return ""
    return str(value).strip() if value is not None else ""


def _tool_list(value: Any) -> list[str]:
    # The spec writes allowed-tools as one space-separated string; some files use a list or commas.
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return []


def _string_map(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    return {}


def render_catalog(catalog: SkillCatalog, max_chars: int = 3000) -> str:
    """A bounded markdown list of the skills for the system prompt; empty when there are none.

    Skills that sit side by side (one folder of skill folders) are listed under that folder, each by name
    alone when its SKILL.md is ``<folder>/<name>/SKILL.md``: a long install path is said once, not seven
    times, in every request.
    """
    if not catalog.skills:
        return ""
    header = (
        "## Skills\n"
        "Skills are folders of instructions and scripts. When a task matches a skill, read its SKILL.md "
        "with `view` first and follow it.\n"
    )
    lines: list[str] = []
    used = len(header)
    root: Path | None = None
    for index, skill in enumerate(catalog.skills):
        description = " ".join(skill.description.split())
        if len(description) > CATALOG_DESCRIPTION_CHARS:
            description = description[: CATALOG_DESCRIPTION_CHARS - 1].rstrip() + "…"
        folder = skill.path.parent.parent
        heading = [f"In {folder}/ (each NAME/SKILL.md):"] if folder != root else []
        where = "" if skill.path.parent.name == skill.name else f" ({skill.path.parent.name}/SKILL.md)"
        entry = [*heading, f"- {skill.name} — {description}{where}"]
        size = sum(len(line) + 1 for line in entry)
        left = len(catalog.skills) - index - 1
        # Keep room for the overflow note in case later lines do not fit.
        note_room = 80 if left else 0
        if used + size + note_room > max_chars:
            omitted = len(catalog.skills) - index
            lines.append(f"({omitted} more skill{'s' if omitted != 1 else ''} not listed: the list is full)")
            break
        lines.extend(entry)
        used += size
        root = folder
    return header + "\n".join(lines) + "\n"
