"""`kimicode mcp list|add|remove|import|test` (login/logout: manage/mcp_login.py): manage the MCP servers in KIMICODE_HOME/mcp.json."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kimicode.config import kimicode_home
from kimicode.manage.common import fail as _fail
from kimicode.wording import plural

EXIT_FAILED, EXIT_USAGE = 1, 2

mcp_app = typer.Typer(
    name="mcp",
    help="Manage MCP servers (kept in KIMICODE_HOME/mcp.json).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def register_mcp(app: typer.Typer) -> None:
    from kimicode.manage.mcp_login import add_login_commands

    add_login_commands(mcp_app)
    app.add_typer(mcp_app, name="mcp")


def _home() -> Path:
    return kimicode_home()


def _load(home: Path) -> list:  # list[McpServerConfig]
    from kimicode.mcp.store import McpStoreError, load_servers

    try:
        return load_servers(home)
    except McpStoreError as exc:
        raise _fail(str(exc)) from exc


@mcp_app.command("list")
def list_servers(
    check: Annotated[bool, typer.Option("--check", help="Start each enabled server and show its state.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for servers with --check.")] = 30.0,
) -> None:
    """List the configured servers: name, transport, state (with --check), source."""
    from kimicode.mcp.oauth import sign_in_label
    from kimicode.mcp.store import store_path

    home = _home()
    servers = _load(home)
    if not servers:
        typer.echo(f"no MCP servers in {store_path(home)} (add one with `kimicode mcp add`, or `kimicode mcp import`)")
        return
    states: dict[str, str] = {}
    if check:
        states = asyncio.run(_check_states([s for s in servers if s.enabled], home, timeout))
    width = max(len(s.name) for s in servers)
    for server in servers:
        state = states.get(server.name, "disabled") if check else ("" if server.enabled else "disabled")
        columns = [f"{server.name:<{width}}", f"{server.transport:<5}"]
        if state or check:
            columns.append(f"{state:<18}")
        columns.append(_target(server))
        columns.append(f"[{server.source or 'kimicode'}]")
        columns.append(sign_in_label(home, server))
        typer.echo("  ".join(columns).rstrip())


async def _check_states(servers: list, home: Path, timeout: float) -> dict[str, str]:
    from kimicode.agent.mcp_run import logs_dir_for_home
    from kimicode.mcp.manager import McpManager

    manager = McpManager(servers, log_dir=logs_dir_for_home(home), start_timeout=timeout, home=home)
    manager.start()
    try:
        await manager.wait_ready(timeout + 1)
        states: dict[str, str] = {}
        for status in manager.status():
            if status.state == "ready":
                states[status.name] = f"ready ({plural(status.tool_count, 'tool')})"
            elif status.state == "failed":
                states[status.name] = "failed"
                typer.echo(f"kimicode: MCP server '{status.name}' failed: {status.error} (log: {status.log_path})", err=True)
            else:
                states[status.name] = status.state
        return states
    finally:
        await manager.close(3.0)


def _target(server) -> str:  # server: McpServerConfig
    """What runs (stdio) or where it connects (HTTP/SSE), without repeating the transport."""
    return server.describe() if server.transport == "stdio" else server.url


def _parse_pairs(values: list[str], separator: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, found, rest = value.partition(separator)
        if not found or not key.strip():
            raise _fail(f"{what} '{value}' is not KEY{separator}VALUE")
        pairs[key.strip()] = rest.strip() if separator == ":" else rest
    return pairs


@mcp_app.command(
    "add",
    epilog="Examples: kimicode mcp add files -- npx -y @modelcontextprotocol/server-filesystem . ; "
    "kimicode mcp add api --url https://example.com/mcp --header 'Authorization: Bearer ${API_TOKEN}'",
)
def add(
    name: Annotated[str, typer.Argument(help="Name of the server (its tools are mcp__NAME__TOOL).")],
    command: Annotated[Optional[list[str]], typer.Argument(help="After --: the command and its arguments.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="URL of an HTTP or SSE server.")] = None,
    transport: Annotated[Optional[str], typer.Option("--transport", help="http or sse (with --url).")] = None,
    header: Annotated[Optional[list[str]], typer.Option("--header", help="HTTP header 'K: V' (repeatable).")] = None,
    env: Annotated[Optional[list[str]], typer.Option("--env", "-e", help="Environment K=V for a command (repeatable).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a server of the same name.")] = False,
) -> None:
    """Add a server: `kimicode mcp add NAME -- CMD ARGS...` or `kimicode mcp add NAME --url URL`."""
    from kimicode.mcp.server_config import McpServerConfig, guess_url_transport
    from kimicode.mcp.store import McpStoreError, add_server, store_path

    argv = list(command or [])
    if bool(argv) == bool(url):
        raise _fail("give either a command after -- (kimicode mcp add NAME -- CMD ARGS) or --url URL, not both")
    if transport is not None and transport not in ("http", "sse"):
        raise _fail(f"unknown --transport '{transport}': use http or sse")
    if url:
        if transport is None:
            transport = guess_url_transport(url)
        if env:
            raise _fail("--env applies to a command; an HTTP server takes --header")
        server = McpServerConfig(
            name=name,
            transport=transport,  # type: ignore[arg-type]
            url=url,
            headers=_parse_pairs(header or [], ":", "--header"),
            source="kimicode mcp add",
        )
    else:
        if header or transport:
            raise _fail("--header and --transport apply to --url servers")
        server = McpServerConfig(
            name=name,
            command=argv[0],
            args=argv[1:],
            env=_parse_pairs(env or [], "=", "--env"),
            source="kimicode mcp add",
        )
    home = _home()
    try:
        add_server(home, server, replace=replace)
    except McpStoreError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"added MCP server '{name}' ({server.transport}: {_target(server)}) to {store_path(home)}")


@mcp_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Name of the server to remove.")]) -> None:
    """Remove a server from mcp.json."""
    from kimicode.mcp.store import McpStoreError, remove_server

    try:
        removed = remove_server(_home(), name)
    except McpStoreError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"removed MCP server '{removed.name}'")


@mcp_app.command("import")
def import_(
    all_found: Annotated[bool, typer.Option("--all", help="Import every server found, without asking.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    work_dir: Annotated[Optional[Path], typer.Option("-w", "--work-dir", help="Project to look in (default: current).")] = None,
) -> None:
    """Import the servers configured for Claude, Cursor, VS Code, Zed, Windsurf, Gemini, Codex and Kimi."""
    from kimicode.manage.mcp_import import describe_found, describe_report, discover, new_servers
    from kimicode.mcp.store import McpStoreError, import_servers, store_path

    home = _home()
    discovery = discover((work_dir or Path.cwd()).resolve())
    for path, reason in discovery.problems:
        typer.echo(f"kimicode: skipped {path}: {reason}", err=True)
    for server in discovery.project_servers():
        # A repository's own servers stay with it (they run there once it is trusted), never in the user's list.
        typer.echo(f"left out {server.name} [{server.source}]: project-scoped, it runs only in its trusted folder")
    try:
        fresh = new_servers(discovery.user_servers(), home)
    except McpStoreError as exc:
        raise _fail(str(exc)) from exc
    if not fresh:
        found = len(discovery.user_servers())
        typer.echo(f"nothing new to import ({found} server(s) found, all already in {store_path(home)})")
        return
    typer.echo(f"found {len(fresh)} MCP server(s) to import:")
    for line in describe_found(fresh):
        typer.echo(line)
    if not (yes or all_found):
        if not sys.stdin.isatty():
            raise _fail("not imported: run `kimicode mcp import --yes` to import them without a question")
        if not typer.confirm(f"Import them into {store_path(home)}?", default=True):
            typer.echo("not imported")
            return
    try:
        report = import_servers(home, fresh)
    except (McpStoreError, OSError) as exc:
        raise _fail(f"could not import: {exc}", EXIT_FAILED) from exc
    for line in describe_report(report, home):
        typer.echo(line)


@mcp_app.command("test")
def test(
    name: Annotated[str, typer.Argument(help="Name of the server to start.")],
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for it to start.")] = 30.0,
) -> None:
    """Start one server, list its tools, and exit 0 if it works (1 if it does not)."""
    home = _home()
    servers = _load(home)
    server = next((s for s in servers if s.name == name), None)
    if server is None:
        known = ", ".join(s.name for s in servers) or "none"
        raise _fail(f"no MCP server named '{name}' (configured: {known})")
    server.enabled = True  # testing a disabled server is a reasonable thing to do
    ok = asyncio.run(_test_server(server, home, timeout))
    raise typer.Exit(0 if ok else EXIT_FAILED)


async def _test_server(server, home: Path, timeout: float) -> bool:  # server: McpServerConfig
    from kimicode.agent.mcp_run import logs_dir_for_home
    from kimicode.mcp.manager import McpManager

    manager = McpManager([server], log_dir=logs_dir_for_home(home), start_timeout=timeout, home=home)
    manager.start()
    try:
        await manager.wait_ready(timeout + 1)
        status = manager.status()[0]
        if status.state != "ready":
            why = status.error or f"still {status.state} after {timeout:g}s"
            typer.echo(f"kimicode: MCP server '{server.name}' failed: {why} (log: {status.log_path})", err=True)
            return False
        tools = manager.tools()
        typer.echo(f"MCP server '{server.name}' is ready ({server.transport}: {_target(server)}), {plural(len(tools), 'tool')}:")
        for tool in tools:
            note = " (read-only)" if tool.read_only else ""
            first_line = (tool.description or "").strip().splitlines()[0] if tool.description.strip() else ""
            typer.echo(f"  {tool.name}{note}  {first_line}".rstrip())
        return True
    finally:
        await manager.close(3.0)
