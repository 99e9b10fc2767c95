"""`kimicode trust [--revoke]`: trust (or stop trusting) a folder's own settings, kept in KIMICODE_HOME/trust.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kimicode.config import ConfigError, kimicode_home


def register_trust(app: typer.Typer) -> None:
    app.command("trust")(trust)


def trust(
    revoke: Annotated[bool, typer.Option("--revoke", help="Stop trusting the folder and forget its saved rules.")] = False,
    work_dir: Annotated[Optional[Path], typer.Option("-w", "--work-dir", help="Folder (default: current).")] = None,
) -> None:
    """Trust this folder: its .kimicode/config.toml and MCP files may widen what kimicode does."""
    from kimicode.config import widening_settings
    from kimicode.security.trust import ProjectFiles, TrustStore

    workspace = (work_dir or Path.cwd()).resolve()
    if not workspace.is_dir():
        typer.echo(f"kimicode: {workspace} is not a directory", err=True)
        raise typer.Exit(2)
    home = kimicode_home()
    store = TrustStore(home)
    if revoke:
        known = store.record(workspace) is not None
        store.revoke(workspace)
        typer.echo(f"{workspace} is no longer trusted" if known else f"{workspace} was not trusted")
        return
    files = ProjectFiles(workspace)  # read once: what is listed is what the fingerprint covers
    try:
        settings = widening_settings(workspace, home, files)
    except ConfigError as exc:
        typer.echo(f"kimicode: {exc}", err=True)
        raise typer.Exit(2) from exc
    for line in settings:
        typer.echo(f"  {line}")
    store.set(workspace, True, files.fingerprint())
    if settings:
        typer.echo(f"trusted {workspace}: the settings above apply until its project files change")
    else:
        typer.echo(f"trusted {workspace} (its project files widen nothing now; a change asks again)")
