"""Run the configured MCP servers and expose their tools as kimicode tools.

Each server lives in its own long-lived asyncio task, which enters and exits the SDK's transport and
session contexts (anyio requires both in the same task). Tool calls are sent on that session from the
caller's task, so several calls can be in flight at once. A server that cannot start, crashes, or breaks
the protocol is marked failed with its stderr kept in ``log_dir/<name>.log``; every other server and the
agent carry on. The ``mcp`` SDK is imported only inside the functions that talk to servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import struct
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from kimicode.llm.messages import Image
from kimicode.mcp.server_config import McpServerConfig
from kimicode.security.redact import redact
from kimicode.tools.base import Tool, ToolContext, ToolResult, truncate_middle

ServerState = Literal["starting", "ready", "failed", "stopped"]

MAX_TOOL_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class ServerStatus:
    name: str
    state: ServerState
    tool_count: int
    error: str
    source: str
    log_path: Path


@dataclass
class _RemoteTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool


def sanitize_name(text: str) -> str:
    return _UNSAFE.sub("_", text) or "_"


def mcp_tool_name(server: str, tool: str) -> str:
    """``mcp__<server>__<tool>`` limited to the characters and length model APIs accept."""
    name = f"mcp__{sanitize_name(server)}__{sanitize_name(tool)}"
    if len(name) <= MAX_TOOL_NAME:
        return name
    import hashlib

    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_TOOL_NAME - 9]}_{digest}"


class McpTool(Tool):
    """A tool served by an MCP server; concrete subclasses are made per remote tool (see ``_make_tool``)."""

    server_name: str = ""
    remote_name: str = ""

    def __init__(self, manager: McpManager) -> None:
        self._manager = manager

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await self._manager.call_tool(self.server_name, self.remote_name, args)

    def summary(self, args: dict[str, Any]) -> str:
        return f"{self.server_name}:{self.remote_name}"


def _make_tool(manager: McpManager, server: str, remote: _RemoteTool) -> McpTool:
    name = mcp_tool_name(server, remote.name)
    cls = type(
        f"McpTool_{name}",
        (McpTool,),
        {
            "name": name,
            "description": remote.description or f"Tool '{remote.name}' of MCP server '{server}'.",
            "parameters": remote.input_schema or {"type": "object", "properties": {}},
            "read_only": remote.read_only,
            "server_name": server,
            "remote_name": remote.name,
        },
    )
    return cls(manager)


class _ServerRunner:
    """Owns one server's connection for its whole life, inside one task."""

    def __init__(self, config: McpServerConfig, log_path: Path, start_timeout: float) -> None:
        self.config = config
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.state: ServerState = "starting"
        self.error = ""
        self.tools: list[_RemoteTool] = []
        self.session: Any = None
        self.settled = asyncio.Event()  # set once the server is ready or failed
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log: IO[str] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-server-{self.config.name}")

    def fail(self, reason: str) -> None:
        """Mark the server failed (once) and ask its task to tear the connection down."""
        if self.state in ("starting", "ready"):
            self.state = "failed"
            self.error = reason
            self._write_log(f"[kimicode] server marked failed: {reason}\n")
        self.settled.set()
        self._stop.set()

    async def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._task is None:
            return
        if self.state == "starting":
            # A server still in its handshake never looks at _stop; waiting would only delay the exit.
            timeout = 0
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except BaseException:  # noqa: BLE001 - teardown of a stuck server; already reported
                pass
        except BaseException:  # noqa: BLE001
            pass

    def _write_log(self, text: str) -> None:
        if self._log is not None and not self._log.closed:
            self._log.write(redact(text))
            self._log.flush()

    async def _run(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
        try:
            await self._serve()
        except BaseException as exc:  # noqa: BLE001 - any failure of one server must stay contained
            if isinstance(exc, asyncio.CancelledError) and self._stop.is_set():
                pass
            elif self.state in ("starting", "ready") and not self._stop.is_set():
                self.fail(_describe_failure(exc, self.config))
            else:
                self._write_log(f"[kimicode] during shutdown: {_flatten(exc)}\n")
        finally:
            self.session = None
            if self.state in ("starting", "ready"):
                self.state = "stopped"
            self.settled.set()
            self._log.close()

    async def _serve(self) -> None:
        import anyio
        from mcp.client.session import ClientSession

        config = self.config.expanded()
        self._write_log(f"[kimicode] starting MCP server '{config.name}': {config.describe()}\n")
        async with AsyncExitStack() as stack:
            read_stream, write_stream = await stack.enter_async_context(self._transport(config))
            session = await stack.enter_async_context(
                ClientSession(read_stream, write_stream, message_handler=self._on_message)
            )
            with anyio.fail_after(self.start_timeout):
                await session.initialize()
                self.tools = await _list_tools(session)
            if self.state != "starting":
                return  # garbage on stdout during the handshake already failed it
            self.session = session
            self.state = "ready"
            self._write_log(f"[kimicode] ready with {len(self.tools)} tools\n")
            self.settled.set()
            await self._stop.wait()

    def _transport(self, config: McpServerConfig) -> Any:
        if config.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            from kimicode.security.childenv import server_env

            params = StdioServerParameters(
                command=config.command,
                args=config.args,
                env=server_env(config.env),  # its own settings only: never the model's API keys
                cwd=config.cwd or None,
                encoding_error_handler="replace",
            )
            return stdio_client(params, errlog=self._log)
        if config.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(config.url, headers=config.headers or None)
        return _streamable_http(config)

    async def _on_message(self, message: Any) -> None:
        # Transport faults (a stdout line that is not JSON-RPC) arrive here as exceptions.
        if isinstance(message, Exception):
            text = _flatten(message)
            self._write_log(f"[kimicode] protocol error: {text}\n")
            self.fail(f"sent something that is not MCP on its output ({text[:120]})")


HTTP_TIMEOUT = 30.0  # connect, write, pool (s)
HTTP_STREAM_READ_TIMEOUT = 300.0  # a server may hold a streamed response open


def _streamable_http(config: McpServerConfig) -> Any:
    from contextlib import asynccontextmanager

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    @asynccontextmanager
    async def connect() -> Any:
        # The SDK's own client settings, made here: a response stream may stay open for minutes, so only the
        # read timeout is long. Redirects are the transport's business (it follows them within the origin).
        timeout = httpx2.Timeout(HTTP_TIMEOUT, read=HTTP_STREAM_READ_TIMEOUT)
        async with httpx2.AsyncClient(headers=config.headers or None, timeout=timeout) as client:
            async with streamable_http_client(config.url, http_client=client) as streams:
                yield streams

    return connect()


async def _list_tools(session: Any) -> list[_RemoteTool]:
    tools: list[_RemoteTool] = []
    cursor: str | None = None
    while True:
        if cursor is None:
            listing = await session.list_tools()
        else:
            from mcp_types import PaginatedRequestParams

            listing = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        for tool in listing.tools:
            annotations = getattr(tool, "annotations", None)
            read_only = bool(getattr(annotations, "read_only_hint", False)) if annotations else False
            tools.append(
                _RemoteTool(
                    name=tool.name,
                    description=tool.description or "",
                    input_schema=dict(tool.input_schema or {}),
                    read_only=read_only,
                )
            )
        cursor = listing.next_cursor
        if not cursor:
            return tools


def _flatten(exc: BaseException) -> str:
    """The innermost meaningful message of a possibly nested exception group, on one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe_failure(exc: BaseException, config: McpServerConfig) -> str:
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    if isinstance(inner, FileNotFoundError) and config.transport == "stdio":
        return f"command not found: {config.command!r} (install it or fix the command in mcp.json)"
    if isinstance(inner, TimeoutError):
        return "did not finish starting in time (start timeout)"
    if _is_connection_closed(inner):
        return "exited or closed the connection"
    if config.transport != "stdio":
        return f"cannot use {config.url}: {_flatten(inner)}"
    return _flatten(inner)


def _is_connection_closed(exc: BaseException) -> bool:
    try:
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED
    except ImportError:  # pragma: no cover - the SDK is a dependency
        return False
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    import anyio

    return isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream))


class McpManager:
    """Starts MCP servers in the background and turns their tools into kimicode tools."""

    def __init__(
        self,
        servers: list[McpServerConfig],
        log_dir: Path,
        start_timeout: float = 30.0,
        call_timeout: float = 120.0,
    ) -> None:
        self.log_dir = log_dir
        self.call_timeout = call_timeout
        self._runners: dict[str, _ServerRunner] = {}
        for config in servers:
            if not config.enabled:
                continue
            log_path = log_dir / f"{sanitize_name(config.name)}.log"
            self._runners[config.name] = _ServerRunner(config, log_path, start_timeout)
        self._started = False
        self._tool_cache: dict[str, list[Tool]] = {}

    def start(self) -> None:
        """Launch every server concurrently; returns at once (needs a running event loop)."""
        if self._started:
            return
        self._started = True
        _quiet_sdk_logging(self.log_dir)
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
                self._tool_cache[name] = [_make_tool(self, name, remote) for remote in runner.tools]
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
            )
            for name, runner in self._runners.items()
        ]

    async def call_tool(self, server: str, tool: str, args: dict[str, Any]) -> ToolResult:
        """Call one remote tool; every failure comes back as an is_error result naming the server."""
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
            result = await asyncio.wait_for(session.call_tool(tool, args or {}), self.call_timeout)
        except asyncio.TimeoutError:
            return ToolResult(
                f"MCP server '{server}' did not answer {tool} within {self.call_timeout:g}s; "
                "try again with less work or continue without it.",
                is_error=True,
            )
        except Exception as exc:  # noqa: BLE001 - mapped to a result the model can act on
            inner = exc
            while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
                inner = inner.exceptions[0]
            if _is_connection_closed(inner) or runner.state == "failed":
                runner.fail(f"stopped during a call to {tool} (the server exited or closed the connection)")
                return ToolResult(
                    f"MCP server '{server}' failed during {tool}: it exited or closed the connection; "
                    f"its log is {runner.log_path}. Continue without its tools.",
                    is_error=True,
                )
            return ToolResult(f"MCP server '{server}' rejected {tool}: {_flatten(inner)}", is_error=True)
        return convert_result(result, label=f"{server}/{tool}")

    async def close(self, timeout: float = 10.0) -> None:
        """Stop every server and wait for their processes to be reaped."""
        await asyncio.gather(*(runner.stop(timeout) for runner in self._runners.values()))
        for runner in self._runners.values():
            if runner.state in ("starting", "ready"):
                runner.state = "stopped"


def convert_result(result: Any, label: str = "") -> ToolResult:
    """Map an MCP CallToolResult: text → text, images → Image, structured content → JSON text."""
    texts: list[str] = []
    images: list[Image] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            try:
                data = base64.b64decode(block.data)
            except ValueError:
                texts.append(f"[image from {label} could not be decoded]")
                continue
            width, height = _png_size(data)
            images.append(Image(mime=block.mime_type, data=data, width=width, height=height, label=label))
        elif kind == "audio":
            texts.append(f"[audio content ({block.mime_type}) is not supported and was left out]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            texts.append(text if text is not None else f"[binary resource {resource.uri}]")
        elif kind == "resource_link":
            texts.append(f"[resource link: {block.uri}]")
    structured = getattr(result, "structured_content", None)
    if structured is not None and not texts:
        texts.append(json.dumps(structured, ensure_ascii=False, indent=2))
    text = "\n".join(texts) if texts else ("(no output)" if not images else "")
    return ToolResult(text=truncate_middle(text), images=images, is_error=bool(getattr(result, "is_error", False)))


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 0, 0


def _quiet_sdk_logging(log_dir: Path) -> None:
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
