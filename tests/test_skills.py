"""Skill discovery from a fake home and project, the lenient frontmatter reader, and the catalog."""

from __future__ import annotations

from pathlib import Path

from kimicode.discovery.frontmatter import parse_frontmatter
from kimicode.discovery.skills import discover_skills, render_catalog


def write_skill(root: Path, folder: str, frontmatter: str, body: str = "Steps.\n") -> Path:
    path = root / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{frontmatter.strip()}\n---\n{body}", encoding="utf-8")
    return path


def make_layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    home = tmp_path / "home"
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    workspace = project / "src"
    workspace.mkdir()
    return home, project, workspace


def test_user_and_project_skills_found_invalid_reported_and_shadowing(tmp_path: Path) -> None:
    home, project, workspace = make_layout(tmp_path)
    kimicode_home = tmp_path / "kimicode-home"
    pdf = write_skill(home / ".claude/skills", "pdf", "name: pdf\ndescription: Fill and read PDF forms.")
    user_deploy = write_skill(home / ".claude/skills", "deploy", "name: deploy\ndescription: User deploy steps.")
    project_deploy = write_skill(
        project / ".agents/skills", "deploy", "name: deploy\ndescription: Project deploy: uses make ship."
    )
    review = write_skill(project / ".agents/skills", "review", "name: review\ndescription: Review a diff.")
    no_description = write_skill(home / ".codex/skills", "broken", "name: broken")
    no_frontmatter = home / ".cursor/skills/plain/SKILL.md"
    no_frontmatter.parent.mkdir(parents=True)
    no_frontmatter.write_text("# Just markdown\n", encoding="utf-8")
    (home / ".claude/skills/not-a-skill").mkdir()  # folder without SKILL.md is ignored

    catalog = discover_skills(workspace, home, kimicode_home, builtin_dir=None)

    by_name = {skill.name: skill for skill in catalog.skills}
    assert set(by_name) == {"pdf", "deploy", "review"}
    assert by_name["pdf"].path == pdf and by_name["pdf"].source == "user:~/.claude/skills"
    assert by_name["review"].path == review and by_name["review"].source == "project:.agents/skills"
    # The project skill (found from a subfolder of the git root) shadows the user one.
    assert by_name["deploy"].path == project_deploy
    assert by_name["deploy"].description == "Project deploy: uses make ship."
    [(loser, winner)] = catalog.shadowed
    assert loser.path == user_deploy and winner.path == project_deploy
    invalid = dict(catalog.invalid)
    assert set(invalid) == {no_description, no_frontmatter}
    assert "description" in invalid[no_description]
    assert "frontmatter" in invalid[no_frontmatter]

    text = render_catalog(catalog)
    assert f"In {pdf.parent.parent}/ (each NAME/SKILL.md):\n- pdf — Fill and read PDF forms." in text
    assert f"In {project_deploy.parent.parent}/ (each NAME/SKILL.md):\n" in text
    assert "- deploy — Project deploy: uses make ship.\n" in text and "- review — Review a diff." in text
    assert text.count("In ") == 2  # one line per folder of skills, however many skills it holds
    assert "broken" not in text and "User deploy steps" not in text


def test_catalog_names_the_skill_file_when_its_folder_has_another_name(tmp_path: Path) -> None:
    home, _project, workspace = make_layout(tmp_path)
    write_skill(home / ".claude/skills", "pdf", "name: pdf-tools\ndescription: PDF forms.")
    text = render_catalog(discover_skills(workspace, home, tmp_path / "kh"))
    assert "- pdf-tools — PDF forms. (pdf/SKILL.md)" in text


def test_precedence_kimicode_home_over_other_user_dirs_and_builtin_last(tmp_path: Path) -> None:
    home, _project, workspace = make_layout(tmp_path)
    kimicode_home = tmp_path / "kimicode-home"
    builtin = tmp_path / "builtin"
    write_skill(home / ".gemini/skills", "lint", "name: lint\ndescription: gemini lint")
    mine = write_skill(kimicode_home / "skills", "lint", "name: lint\ndescription: kimicode lint")
    write_skill(builtin, "lint", "name: lint\ndescription: builtin lint")
    only_builtin = write_skill(builtin, "screenshots", "name: screenshots\ndescription: builtin shots")
    agents = write_skill(home / ".config/agents/skills", "notes", "name: notes\ndescription: shared notes")

    catalog = discover_skills(workspace, home, kimicode_home, builtin_dir=builtin)
    by_name = {skill.name: skill for skill in catalog.skills}
    assert by_name["lint"].path == mine and by_name["lint"].source == "kimicode-home"
    assert by_name["screenshots"].path == only_builtin and by_name["screenshots"].source == "builtin"
    assert by_name["notes"].path == agents
    assert len(catalog.shadowed) == 2


def test_lenient_frontmatter() -> None:
    data = parse_frontmatter(
        """
name: web-research
description: Search the web: then summarise, citing sources
license: "Apache-2.0"
allowed-tools: [bash, "view", 'screenshot']
metadata:
  author: Ada Lovelace
  version: "1.2"
notes: >
  folded text
  on two lines

  new paragraph
script: |
  line one
    indented
tags:
  - a
  - 'b c'
"""
    )
    assert data["name"] == "web-research"
    assert data["description"] == "Search the web: then summarise, citing sources"
    assert data["license"] == "Apache-2.0"
    assert data["allowed-tools"] == ["bash", "view", "screenshot"]
    assert data["metadata"] == {"author": "Ada Lovelace", "version": "1.2"}
    assert data["notes"] == "folded text on two lines\nnew paragraph"
    assert data["script"] == "line one\n  indented"
    assert data["tags"] == ["a", "b c"]


def test_skill_fields_and_folded_description(tmp_path: Path) -> None:
    home, _project, workspace = make_layout(tmp_path)
    path = write_skill(
        home / ".claude/skills",
        "pdf",
        "name: pdf\ndescription: >\n  Fill PDF forms:\n  fast.\nlicense: MIT\nallowed-tools: Bash(python:*) Read\n"
        "metadata:\n  owner: docs-team",
    )
    [skill] = discover_skills(workspace, home, tmp_path / "kh").skills
    assert skill.path == path
    assert skill.description == "Fill PDF forms: fast."
    assert skill.license == "MIT"
    assert skill.allowed_tools == ["Bash(python:*)", "Read"]
    assert skill.metadata == {"owner": "docs-team"}


def test_catalog_is_bounded_and_says_how_many_were_left_out(tmp_path: Path) -> None:
    home, _project, workspace = make_layout(tmp_path)
    for index in range(60):
        write_skill(home / ".claude/skills", f"skill-{index:02d}", f"name: skill-{index:02d}\ndescription: {'x' * 80}")
    catalog = discover_skills(workspace, home, tmp_path / "kh")
    text = render_catalog(catalog, max_chars=2000)
    assert len(text) <= 2000
    listed = text.count("\n- skill-")
    assert 0 < listed < 60
    assert f"({60 - listed} more skills not listed" in text
    assert render_catalog(discover_skills(tmp_path / "empty", tmp_path / "nohome", tmp_path / "kh")) == ""
