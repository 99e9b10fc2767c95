"""One help style for every command: plain text, `-h` everywhere, values named by what they are.

typer renders help in two styles (rich boxes where ``rich_markup_mode`` is set, plain text elsewhere) and
tags each value with its Python type (``--model <str>``, ``task <str>``). A user reads a value's meaning, not
its type, so every command of the tree is set to the plain style here, once, after typer built it: options
show a metavar (``--model NAME``; declared ones kept), arguments their upper-case name. Subcommands added
later get the same look without having to remember it.
"""

from __future__ import annotations

from typing import Any

HELP_OPTIONS = ["-h", "--help"]


def plain_help(command: Any) -> Any:
    """Restyle ``command`` (a click command as typer built it) and everything below it; returns it."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    command.context_settings.setdefault("help_option_names", HELP_OPTIONS)
    for param in command.params:
        _plain_param(param)
    # typer carries its own copy of click, so commands and parameters are told apart by what they have.
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


def _plain_param(param: Any) -> None:
    if param.param_type_name == "option":
        if param.is_flag or param.count:
            return
        if param.metavar is None:
            longest = max(param.opts, key=len).lstrip("-")
            param.metavar = longest.upper().replace("-", "_")
        metavar = param.metavar
        param.display_type_rich = lambda ctx, _m=metavar: _m
    elif param.param_type_name == "argument":
        name = (param.metavar or param.name or "value").upper()
        param.metavar = name  # typer adds "..." for a list itself
        param.display_type_rich = _no_type


def _no_type(*_: Any, **__: Any) -> None:
    return None
