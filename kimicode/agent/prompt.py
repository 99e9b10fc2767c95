"""The system prompt: the template, the workspace facts, project instructions and extra sections."""

from __future__ import annotations

import datetime
import platform
from importlib import resources
from pathlib import Path
from string import Template

# Project instruction files, in order of preference at each directory.
INSTRUCTION_FILES = ("AGENTS.md", "KIMI.md", "CLAUDE.md")
MAX_INSTRUCTIONS_CHARS = 12_000


def load_prompt(name: str) -> str:
    return resources.files("kimicode.agent.prompts").joinpath(name).read_text(encoding="utf-8")


def git_root(path: Path) -> Path | None:
    for directory in (path, *path.parents):
        if (directory / ".git").exists():
            return directory
    return None


def project_instructions(workspace: Path, skipped: list[str] | None = None) -> list[tuple[Path, str]]:
    """The first instruction file found at the git root and at the workspace (root first). A file that
    leads out of the project (a link to ~/.ssh/id_rsa in a hostile checkout) is not read: the system prompt
    goes to the endpoint. Each such file is named in ``skipped``."""
    directories: list[Path] = []
    root = git_root(workspace)
    if root is not None and root != workspace:
        directories.append(root)
    directories.append(workspace)
    bound = (root or workspace).resolve()
    found: list[tuple[Path, str]] = []
    for directory in directories:
        for name in INSTRUCTION_FILES:
            candidate = directory / name
            if not candidate.is_file():
                continue
            real = candidate.resolve()
            if not real.is_relative_to(bound):
                if skipped is not None:
                    skipped.append(f"{candidate} leads to {real}, outside the project: not read as instructions")
                continue
            try:
                with real.open("rb") as handle:
                    data = handle.read(MAX_INSTRUCTIONS_CHARS * 4)  # UTF-8: at most 4 bytes a character
            except OSError:
                continue
            found.append((candidate, data.decode("utf-8", errors="replace")[:MAX_INSTRUCTIONS_CHARS]))
            break
    return found


def build_system_prompt(
    workspace: Path, sections: list[str] | None = None, home: Path | None = None, skipped: list[str] | None = None
) -> str:
    """The base prompt, then the user's global instructions, the project's, then feature sections (skills,
    visual loop ...). ``home``: KIMICODE_HOME (default: from the environment); ``skipped``: where project
    instruction files that were not read are named."""
    from kimicode.config import kimicode_home
    from kimicode.extensions.memory import global_instructions

    base = Template(load_prompt("system.md")).safe_substitute(
        workspace=str(workspace),
        date=datetime.date.today().isoformat(),
        os=f"{platform.system()} {platform.release()}",
    )
    parts = [base.strip()]
    for path, text in global_instructions(home or kimicode_home()):  # the project's come later: they can narrow them
        parts.append(f"# The user's instructions for every project ({path.name}, from {path.parent})\n\n{text.strip()}")
    for path, text in project_instructions(workspace, skipped):
        parts.append(f"# Project instructions ({path.name}, from {path.parent})\n\n{text.strip()}")
    parts.extend(section.strip() for section in sections or [] if section.strip())
    return "\n\n".join(parts) + "\n"
