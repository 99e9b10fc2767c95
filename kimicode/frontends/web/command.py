"""The command lines of `kimicode serve` and `kimicode web` (DESIGN.md B.15); the server loads only when
one of them runs, so `kimicode --help` never imports the ASGI stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kimicode.config import MODES, SANDBOX_MODES

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, no_args_is_help=False)
HOST_HELP = "Address to listen on (default 127.0.0.1). Anything but loopback is reachable by others: give it only on purpose."
WORKSPACE_HELP = "A folder sessions may work in (repeat for more; default: the current folder). Trusted folders are allowed too."


def _start(host: Optional[str], port: int, workspace: Optional[list[Path]], flags: dict[str, Any], browser: bool) -> None:
    from kimicode.frontends.web.server import DEFAULT_HOST, run_serve

    if flags.get("mode") is not None and flags["mode"] not in MODES:
        typer.echo(f"kimicode: unknown --mode '{flags['mode']}': use one of {', '.join(MODES)}", err=True)
        raise typer.Exit(2)
    if flags.get("sandbox") is not None and flags["sandbox"] not in SANDBOX_MODES:
        typer.echo(f"kimicode: unknown --sandbox '{flags['sandbox']}': use one of {', '.join(SANDBOX_MODES)}", err=True)
        raise typer.Exit(2)
    folders = [path.expanduser().resolve() for path in (workspace or [Path.cwd()])]
    for folder in folders:
        if not folder.is_dir():
            typer.echo(f"kimicode: --workspace {folder} is not a folder", err=True)
            raise typer.Exit(2)
    if not 0 <= port <= 65535:
        typer.echo(f"kimicode: --port must be 0 to 65535, got {port}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_serve(flags, host or DEFAULT_HOST, port, folders, open_browser=browser))


Host = Annotated[Optional[str], typer.Option("--host", metavar="ADDRESS", help=HOST_HELP)]
Port = Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")]
Workspace = Annotated[Optional[list[Path]], typer.Option("--workspace", metavar="DIR", help=WORKSPACE_HELP)]
Model = Annotated[Optional[str], typer.Option("-m", "--model", metavar="NAME", help="Model of new sessions.")]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", metavar="URL", help="OpenAI-compatible endpoint URL.")]
Mode = Annotated[Optional[str], typer.Option("--mode", metavar="MODE", help="Mode of new sessions: instant, thinking, agent or swarm.")]
Sandbox = Annotated[Optional[str], typer.Option("--sandbox", metavar="MODE", help="Sandbox for commands: read-only, workspace-write or off.")]
Debug = Annotated[bool, typer.Option("--debug", help="Log debug detail to KIMICODE_HOME/logs/serve.log.")]


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def serve(
    host: Host = None, port: Port = 5494, workspace: Workspace = None, model: Model = None, base_url: BaseUrl = None,
    mode: Mode = None, sandbox: Sandbox = None, debug: Debug = False,
) -> None:
    """Serve sessions over HTTP: a JSON API, events as server-sent events, /openapi.json. Needs the token it prints."""
    flags = {"model": model, "base_url": base_url, "mode": mode, "sandbox": sandbox, "debug": debug or None}
    _start(host, port, workspace, flags, browser=False)


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def web(
    host: Host = None, port: Port = 5494, workspace: Workspace = None, model: Model = None, base_url: BaseUrl = None,
    mode: Mode = None, sandbox: Sandbox = None, debug: Debug = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser; print the login link only.")] = False,
) -> None:
    """Serve the web UI (and the HTTP API) and open it in a browser."""
    flags = {"model": model, "base_url": base_url, "mode": mode, "sandbox": sandbox, "debug": debug or None}
    _start(host, port, workspace, flags, browser=not no_browser)


def main(argv: list[str]) -> None:
    from kimicode.cli_help import plain_help

    plain_help(typer.main.get_command(app)).main(args=argv, prog_name="kimicode")
