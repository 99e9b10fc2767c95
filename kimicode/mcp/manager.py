"""Run the configured MCP servers and expose their tools as kimicode tools.

Each server lives in its own long-lived task (kimicode/mcp/server.py); its tools become kimicode tools
(kimicode/mcp/tools.py) and their results ToolResults (kimicode/mcp/results.py).

Invariants:
- Starting never blocks: ``start`` launches every enabled server at once and returns; ``tools()`` lists
  the servers ready now, and a later call picks up slow starters.
- A server that cannot start, crashes, or breaks the protocol is marked failed with its stderr kept in
  ``log_dir/<name>.log``; every other server and the agent carry on.
- Every call's failure (not configured, not available, timed out, rejected, server gone) comes back as an
  is_error result that names the server and says what to do; nothing is raised to the agent.
- The SDK's own log records go to ``log_dir/mcp-client.log``, redacted, never to the user's screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.mcp.elicit import ServerRequests
from kimicode.mcp.results import convert_result
from kimicode.mcp.server import SIGN_IN_PREFIX, ServerRunner, ServerState, flatten, is_connection_closed
from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.tools import OnProgress, make_tool, sanitize_name
from kimicode.security.redact import redact
from kimicode.tools.base import CURRENT_TOOL_CALL, Tool, ToolResult

__all__ = ["McpManager", "ServerStatus", "quiet_sdk_logging"]


@dataclass
class ServerStatus:
    name: str
    state: ServerState
    tool_count: int
    error: str
    source: str
    log_path: Path
    held_back: list[str] = field(default_factory=list)  # tools not offered: they run only as tasks
    needs_sign_in: bool = False  # failed because only `kimicode mcp login NAME` can make it work
    notes: list[str] = field(default_factory=list)  # what it works without ("could not list its prompts: ...")


class McpManager:
    """Starts MCP servers in the background and turns their tools into kimicode tools."""

    def __init__(
        self,
        servers: list[McpServerConfig],
        log_dir: Path,
        start_timeout: float = 30.0,
        call_timeout: float = 120.0,
        home: Path | None = None,
        roots: list[Path] | None = None,
    ) -> None:
        """``home``: KIMICODE_HOME, whose ``mcp-tokens/`` hold OAuth sign-ins (None: remote servers get none).
        ``roots``: the folders kimicode works in, told to servers that ask (the workspace, ``--add-dir``)."""
        self.log_dir = log_dir
        self.call_timeout = call_timeout
        self.requests = ServerRequests(list(roots or []))  # elicitation and roots; front ends set its asker
        self.blob_dir: Path | None = None  # where binary resources in results are saved (None: not saved)
        self._runners: dict[str, ServerRunner] = {}
        for config in servers:
            if not config.enabled:
                continue
            log_path = log_dir / f"{sanitize_name(config.name)}.log"
            self._runners[config.name] = ServerRunner(
                config, log_path, start_timeout, home, self.requests.callbacks(config.name)
            )
        self._started = False
        self._tool_cache: dict[str, list[Tool]] = {}

    def start(self) -> None:
        """Launch every server concurrently; returns at once (needs a running event loop)."""
        if self._started:
            return
        self._started = True
        quiet_sdk_logging(self.log_dir)
        for runner in self._runners.values():
            runner.start()

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every server is ready or failed; False if some were still starting at the timeout."""
        waits = [runner.settled.wait() for runner in self._runners.values()]
        if not waits:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def tools(self) -> list[Tool]:
        """Tools of the servers that are ready now (call again later to pick up slow starters)."""
        result: list[Tool] = []
        seen: set[str] = set()
        for name, runner in self._runners.items():
            if runner.state != "ready":
                continue
            if name not in self._tool_cache:
                self._tool_cache[name] = [make_tool(self, name, remote) for remote in runner.tools]
            for tool in self._tool_cache[name]:
                if tool.name not in seen:
                    seen.add(tool.name)
                    result.append(tool)
        return result

    def status(self) -> list[ServerStatus]:
        return [
            ServerStatus(
                name=name,
                state=runner.state,
                tool_count=len(runner.tools) if runner.state == "ready" else 0,
                error=runner.error,
                source=runner.config.source,
                log_path=runner.log_path,
                held_back=list(runner.held_back),
                needs_sign_in=runner.state == "failed" and runner.error.startswith(SIGN_IN_PREFIX),
                notes=list(runner.notes),
            )
            for name, runner in self._runners.items()
        ]

    def server_names(self) -> list[str]:
        return list(self._runners)

    def prompts(self) -> list[Any]:
        """The RemotePrompts of the servers ready now (kimicode/mcp/prompts.py)."""
        return [p for runner in self._runners.values() if runner.state == "ready" for p in runner.prompts]

    def resources(self) -> list[Any]:
        """The RemoteResources the servers ready now listed (kimicode/mcp/resources.py)."""
        return [r for runner in self._runners.values() if runner.state == "ready" for r in runner.resources]

    async def get_prompt(self, server: str, name: str, args: dict[str, str]) -> Any:
        """The server's GetPromptResult, or a str saying why there is none."""
        return await self._ask(server, lambda session: session.get_prompt(name, args))

    async def read_resource(self, server: str, uri: str) -> Any:
        """The server's ReadResourceResult, or a str saying why there is none."""
        return await self._ask(server, lambda session: session.read_resource(uri))

    async def _ask(self, server: str, request: Any) -> Any:
        runner = self._runners.get(server)
        if runner is None:
            return f"MCP server '{server}' is not configured"
        if runner.state == "starting":
            await runner.settled.wait()
        if runner.state != "ready" or runner.session is None:
            why = f": {runner.error}" if runner.error else ""
            return f"MCP server '{server}' is not available ({runner.state}{why})"
        try:
            return await self._within_timeout(request(runner.session))
        except asyncio.TimeoutError:
            return f"MCP server '{server}' did not answer within {self.call_timeout:g}s"
        except Exception as exc:  # noqa: BLE001 - said to the user in one line
            return f"MCP server '{server}' refused: {flatten(exc)}"

    async def call_tool(
        self, server: str, tool: str, args: dict[str, Any], on_progress: OnProgress | None = None
    ) -> ToolResult:
        """Call one remote tool; every failure comes back as an is_error result naming the server.

        Every call carries a progress token (the server may then report progress); ``on_progress`` hears it."""
        runner = self._runners.get(server)
        if runner is None:
            return ToolResult(f"MCP server '{server}' is not configured.", is_error=True)
        if runner.state == "starting":
            await runner.settled.wait()
        session = runner.session
        if runner.state != "ready" or session is None:
            why = f": {runner.error}" if runner.error else ""
            return ToolResult(
                f"MCP server '{server}' is not available ({runner.state}{why}); its log is {runner.log_path}. "
                "Continue without its tools.",
                is_error=True,
            )
        try:
            call = session.call_tool(tool, args or {}, progress_callback=on_progress or _ignore_progress)
            with self.requests.running(server, CURRENT_TOOL_CALL.get()):
                result = await self._within_timeout(call)
        except asyncio.TimeoutError:
            return ToolResult(
                f"MCP server '{server}' did not answer {tool} within {self.call_timeout:g}s; "
                "try again with less work or continue without it.",
                is_error=True,
            )
        except Exception as exc:  # noqa: BLE001 - mapped to a result the model can act on
            inner: BaseException = exc
            while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
                inner = inner.exceptions[0]
            if is_connection_closed(inner) or runner.state == "failed":
                runner.fail(f"stopped during a call to {tool} (the server exited or closed the connection)")
                return ToolResult(
                    f"MCP server '{server}' failed during {tool}: it exited or closed the connection; "
                    f"its log is {runner.log_path}. Continue without its tools.",
                    is_error=True,
                )
            return ToolResult(f"MCP server '{server}' rejected {tool}: {flatten(inner)}", is_error=True)
        return convert_result(result, label=f"{server}/{tool}", blob_dir=self.blob_dir)

    async def _within_timeout(self, call: Any) -> Any:
        """``call``'s result, given ``call_timeout`` of its own time: a window in which a server's question
        waited for the user does not count (asyncio.TimeoutError when one without a question runs out)."""
        task = asyncio.ensure_future(call)
        try:
            while True:
                asked_before = self.requests.asked
                done, _ = await asyncio.wait({task}, timeout=self.call_timeout)
                if done:
                    return task.result()
                if not self.requests.asking and self.requests.asked == asked_before:
                    raise asyncio.TimeoutError
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def close(self, timeout: float = 10.0) -> None:
        """Stop every server and wait for their processes to be reaped."""
        await asyncio.gather(*(runner.stop(timeout) for runner in self._runners.values()))
        for runner in self._runners.values():
            if runner.state in ("starting", "ready"):
                runner.state = "stopped"


async def _ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    pass


def quiet_sdk_logging(log_dir: Path) -> None:
    """Send the SDK's own log records to a file, so a misbehaving server never prints on the user's screen."""
    logger = logging.getLogger("mcp")
    if any(getattr(h, "_kimicode", False) for h in logger.handlers):
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / "mcp-client.log", encoding="utf-8", delay=True)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._kimicode = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False


class _RedactingFormatter(logging.Formatter):
    """The SDK logs requests and headers at debug level; the file must not keep the tokens in them."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
