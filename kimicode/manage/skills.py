"""`kimicode skills list`: the skills kimicode offers the model, where each comes from, and what was skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kimicode.config import kimicode_home

skills_app = typer.Typer(
    name="skills",
    help="Show the skills found in this project, your home folder and kimicode.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def register_skills(app: typer.Typer) -> None:
    app.add_typer(skills_app, name="skills")


@skills_app.command("list")
def list_skills(
    work_dir: Annotated[Optional[Path], typer.Option("-w", "--work-dir", help="Project (default: current).")] = None,
) -> None:
    """List skills (name, source, SKILL.md path); shadowed and invalid ones are reported too."""
    from kimicode.agent.skill_catalog import find_skills

    catalog = find_skills((work_dir or Path.cwd()).resolve(), kimicode_home())
    if not catalog.skills:
        typer.echo("no skills found")
    width = max((len(skill.name) for skill in catalog.skills), default=0)
    source_width = max((len(skill.source) for skill in catalog.skills), default=0)
    for skill in catalog.skills:
        typer.echo(f"{skill.name:<{width}}  {skill.source:<{source_width}}  {skill.path}")
    if catalog.shadowed:
        typer.echo("")
        typer.echo("shadowed (a skill of the same name above wins):")
        for loser, winner in catalog.shadowed:
            typer.echo(f"  {loser.name}  {loser.source}  {loser.path}  (shadowed by {winner.source} {winner.path})")
    if catalog.invalid:
        typer.echo("")
        typer.echo("invalid (skipped):")
        for path, reason in catalog.invalid:
            typer.echo(f"  {path}: {reason}")
