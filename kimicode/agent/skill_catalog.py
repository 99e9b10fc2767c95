"""Which skills a run offers the model: discovery with kimicode's own locations filled in."""

from __future__ import annotations

from pathlib import Path

from kimicode.discovery.skills import SkillCatalog, discover_skills, render_catalog

# Modes whose system prompt lists the skills (B.7); instant and thinking keep the first request small.
SKILL_MODES = ("agent", "swarm")


def builtin_skills_dir() -> Path | None:
    """The ``skills/`` folder inside the kimicode package (package data), when present.

    Only kimicode's own package folder counts: a ``skills`` folder beside it (another distribution's, in
    site-packages) is never taken for the built-in skills.
    """
    import kimicode

    folder = Path(kimicode.__file__).resolve().parent / "skills"
    return folder if folder.is_dir() else None


def find_skills(workspace: Path, kimicode_home: Path, home: Path | None = None) -> SkillCatalog:
    """Project, KIMICODE_HOME, the user's home (other agents' folders too), then the built-in skills."""
    return discover_skills(workspace, home or Path.home(), kimicode_home, builtin_dir=builtin_skills_dir())


def skills_section(catalog: SkillCatalog) -> str:
    """The bounded system-prompt section (empty when there are no skills)."""
    return render_catalog(catalog)
