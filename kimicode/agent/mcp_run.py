"""The MCP servers of one run: started in the background when the run starts, closed when it ends.

Servers come from ``KIMICODE_HOME/mcp.json`` (enabled ones only) and, in a trusted folder only, from the
project's own MCP files (``.mcp.json``, ``.kimicode/mcp.json`` ...: project-scoped, never copied into the
user's list). Starting never blocks: the agent is
given ``manager.tools`` as its ``extra_tools`` and sees each server's tools from the first step after that
server is ready. A server that fails (at start or mid-call) is reported once, as one line naming it and its
log, and the run carries on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.config import Config
from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import McpStoreError, load_servers
from kimicode.security.redact import register_mcp_values

if TYPE_CHECKING:  # the manager and its client modules load only when a server is configured
    from kimicode.mcp.manager import McpManager, ServerStatus

# How often the watcher looks for servers that have failed since it last looked (seconds).
WATCH_INTERVAL = 0.2
# How long closing waits for a server to finish before it is cancelled (and its process killed).
CLOSE_TIMEOUT = 3.0

Report = Callable[[str], None]


def logs_dir_for_home(kimicode_home: Path) -> Path:
    """Where each server's stderr is kept (``<name>.log``)."""
    return kimicode_home / "logs"


def logs_dir(config: Config) -> Path:
    return logs_dir_for_home(config.home)


def failure_line(status: ServerStatus) -> str:
    """One line: which server failed, why, and where its log is."""
    if status.needs_sign_in:  # what to run is the whole message
        return f"MCP server '{status.name}' {status.error}"
    why = f": {status.error}" if status.error else ""
    return f"MCP server '{status.name}' failed{why} (log: {status.log_path})"


class FailureReporter:
    """Reports each failed server once, however many times it is checked."""

    def __init__(self, manager: McpManager, report: Report) -> None:
        self.manager = manager
        self.report = report
        self._reported: set[object] = set()

    def check(self) -> None:
        for status in self.manager.status():
            if status.state == "failed" and status.name not in self._reported:
                self._reported.add(status.name)
                self.report(failure_line(status))
            for note in status.notes:  # e.g. its prompts could not be listed: it works without them
                if (status.name, note) not in self._reported:
                    self._reported.add((status.name, note))
                    self.report(f"MCP server '{status.name}' {note}")

    async def watch(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(WATCH_INTERVAL)


def configured_manager(
    config: Config, report: Report, extra: Sequence[McpServerConfig] = ()
) -> McpManager | None:
    """A manager for the enabled servers in mcp.json, or None when there are none (or the file is broken).

    ``extra`` are servers the user named for this run elsewhere (an editor passes its own over ACP): the
    user's choice, so they need no folder trust, and one of them replaces mcp.json's server of its name."""
    try:
        servers = [server for server in load_servers(config.home) if server.enabled]
    except McpStoreError as exc:
        report(f"{exc}; continuing without MCP servers")
        servers = []
    servers += plugin_servers(config, servers, report)
    if config.trusted:
        servers += project_servers(config, servers, report)
    if extra:
        named = {server.name for server in extra}
        servers = [server for server in servers if server.name not in named] + list(extra)
    if not servers:
        return None
    for server in servers:  # their tokens may come back in tool results, errors or logs: hide them there
        register_mcp_values(server.env, server.headers)
        expanded = server.expanded()
        register_mcp_values(expanded.env, expanded.headers)
    from kimicode.mcp.elicit import unattended_asker
    from kimicode.mcp.manager import McpManager

    roots = [config.work_dir, *config.add_dirs]
    manager = McpManager(servers, log_dir=logs_dir(config), home=config.home, roots=roots)
    # Until a front end that can ask the user says otherwise, a server's question is declined (or, with -y,
    # answered with its defaults) in one line.
    manager.requests.asker = unattended_asker(report, config.yolo)
    manager.blob_dir = resources_dir(config)
    return manager


def resources_dir(config: Config) -> Path:
    """Where binary resources from MCP results are saved: the folder of this workspace's sessions."""
    from kimicode.session.store import workspace_hash

    return config.home / "sessions" / workspace_hash(config.work_dir) / "mcp-resources"


def plugin_servers(config: Config, user_servers: list[McpServerConfig], report: Report) -> list[McpServerConfig]:
    """The enabled plugins' enabled servers (installing a plugin trusted them); mcp.json's of a name wins."""
    from kimicode.discovery.mcp_configs import find_plugin_mcp_servers

    found = find_plugin_mcp_servers(config.home)
    for _path, problem in found.problems:
        report(problem)
    taken = {server.name for server in user_servers}
    return [server for server in found.servers if server.enabled and server.name not in taken]


def project_servers(config: Config, user_servers: list[McpServerConfig], report: Report) -> list[McpServerConfig]:
    """The trusted project's own enabled servers; the user's server of the same name wins."""
    from kimicode.discovery.mcp_configs import find_project_mcp_servers

    added: list[McpServerConfig] = []
    # The bytes trust was decided on (config.project_files), not the files read again.
    for server in find_project_mcp_servers(config.work_dir, config.project_files).servers:
        taken = [s for s in [*user_servers, *added] if s.name == server.name]
        if not server.enabled or any(s.same_server(server) for s in taken):
            continue
        if taken:
            report(f"project MCP server '{server.name}' ({server.source}) not started: mcp.json has one of that name")
            continue
        added.append(server)
    return added


@contextlib.asynccontextmanager
async def running_mcp(
    config: Config,
    report: Report,
    wait: float = 0.0,
    start: bool = True,
    extra: Sequence[McpServerConfig] = (),
) -> AsyncIterator[McpManager | None]:
    """Start the configured servers for the length of the ``async with`` block; yields None if there are none.

    ``wait`` (seconds) lets a caller give servers a moment before the first request; 0 never waits.
    ``start=False`` yields None without reading the configuration (a run that offers no MCP tools).
    ``extra``: see ``configured_manager``.
    """
    manager = configured_manager(config, report, extra) if start else None
    if manager is None:
        yield None
        return
    reporter = FailureReporter(manager, report)
    manager.start()
    watcher = asyncio.create_task(reporter.watch(), name="mcp-failure-watch")
    try:
        if wait > 0 and not await manager.wait_ready(wait):
            starting = [status.name for status in manager.status() if status.state == "starting"]
            report(
                f"MCP server{'s' * (len(starting) != 1)} {', '.join(starting)} still starting after {wait:g} s "
                "(mcp_startup_wait); carrying on, their tools join when ready"
            )
        yield manager
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        reporter.check()  # a failure in the last moments of the run is still said
        await manager.close(CLOSE_TIMEOUT)
