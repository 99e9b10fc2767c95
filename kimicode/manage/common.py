"""What the management verbs share: how a usage or configuration problem ends a command."""

from __future__ import annotations

import typer

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one clear line on stderr and return the exit to raise."""
    typer.echo(f"kimicode: {message}", err=True)
    return typer.Exit(code)
