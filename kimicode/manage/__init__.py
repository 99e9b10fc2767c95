"""Management subcommands (`kimicode sessions`, `kimicode mcp ...`, `kimicode skills ...`, `kimicode trust`,
`kimicode batch`, `kimicode models`, `kimicode verify-endpoint`, `kimicode rewind`).

Each feature contributes one registrar: a function that adds its command(s) to the management app.
Adding a feature is one line in REGISTRARS.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from kimicode.manage.batch import register_batch
from kimicode.manage.mcp import register_mcp
from kimicode.manage.models import register_models
from kimicode.manage.plugins import register_plugins
from kimicode.manage.rewind import register_rewind
from kimicode.manage.sessions import register_sessions
from kimicode.manage.skills import register_skills
from kimicode.manage.trust import register_trust
from kimicode.manage.verify_endpoint import register_verify_endpoint

Registrar = Callable[[typer.Typer], None]

REGISTRARS: list[Registrar] = [
    register_sessions,
    register_mcp,
    register_skills,
    register_trust,
    register_batch,
    register_models,
    register_verify_endpoint,
    register_plugins,
    register_rewind,
]


def register(app: typer.Typer) -> None:
    """Add every management command to ``app`` (called once by kimicode.cli before dispatching)."""

    @app.callback()
    def management() -> None:
        """kimicode management commands."""

    for registrar in REGISTRARS:
        registrar(app)
