"""`kimicode sessions`: list the saved sessions of this workspace (or of all)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kimicode.manage.common import fail as _fail


def register_sessions(app: typer.Typer) -> None:
    @app.command("sessions")
    def sessions(
        all_workspaces: Annotated[bool, typer.Option("--all", "-a", help="List sessions of every workspace.")] = False,
        work_dir: Annotated[Optional[Path], typer.Option("-w", "--work-dir", help="Workspace (default: current).")] = None,
        limit: Annotated[int, typer.Option("-n", "--limit", help="How many to show, newest first.")] = 20,
    ) -> None:
        """List saved sessions (resume one with kimicode -r ID, or the last with kimicode -C)."""
        from kimicode.config import ConfigError, load_config
        from kimicode.frontends.common.sessions import describe_sessions, session_store

        try:
            config = load_config(work_dir=work_dir)
        except ConfigError as exc:
            raise _fail(str(exc)) from exc
        infos = session_store(config).list(None if all_workspaces else config.work_dir)
        if not infos:
            where = "any workspace" if all_workspaces else str(config.work_dir)
            typer.echo(f"no sessions for {where}")
            return
        for line in describe_sessions(infos, limit):
            typer.echo(line)
        if all_workspaces:
            return
        typer.echo("resume one with: kimicode -r ID   (the last one: kimicode -C)")
