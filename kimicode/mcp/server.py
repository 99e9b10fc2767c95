"""One MCP server's connection, owned for its whole life by one asyncio task.

The task enters and exits the SDK's transport and session contexts (anyio requires both in the same
task); tool calls are sent on the session from the callers' tasks, so several can be in flight at once.

Invariants:
- A server's state only moves forward: starting -> ready -> stopped, or starting/ready -> failed (once,
  with the reason kept); ``settled`` is set as soon as it is ready or failed.
- ``session`` is not None only while the server is ready.
- Whatever a server does (exits, hangs in its handshake, prints garbage) stays inside its task: it is
  marked failed with its stderr and kimicode's notes in its log file, redacted, and nothing is raised.
- A stdio server gets only its own settings in its environment, never the model's API keys.
- The ``mcp`` SDK is imported only inside the functions that talk to servers.
- A tool that can only run as a task (``execution.taskSupport: "required"``, MCP 2025-11-25) is never
  offered: kimicode calls tools directly, and such a call always fails. It is named in ``held_back`` and in
  the server's log instead. Tools that may run as tasks ("optional") are offered as plain tools.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from kimicode.mcp.server_config import McpServerConfig
from kimicode.security.redact import redact

__all__ = ["ServerRunner", "ServerState", "RemoteTool", "flatten", "is_connection_closed"]

ServerState = Literal["starting", "ready", "failed", "stopped"]


@dataclass
class RemoteTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool


class ServerRunner:
    """Owns one server's connection for its whole life, inside one task."""

    def __init__(
        self,
        config: McpServerConfig,
        log_path: Path,
        start_timeout: float,
        home: Path | None = None,
        callbacks: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.callbacks = callbacks or {}  # answers to the server's own requests (elicitation, roots)
        self.home = home  # KIMICODE_HOME, where OAuth sign-ins are kept (None: no OAuth)
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.state: ServerState = "starting"
        self.error = ""
        self.tools: list[RemoteTool] = []
        self.held_back: list[str] = []  # tools not offered: they run only as tasks
        self.prompts: list[Any] = []  # RemotePrompt, listed once per connection (kimicode/mcp/prompts.py)
        self.resources: list[Any] = []  # RemoteResource, for completion (kimicode/mcp/resources.py)
        self.notes: list[str] = []  # what it works without, said once to the user
        self.unauthorized = False  # an HTTP server answered 401
        self.auth: Any = None  # the OAuth provider of a remote server's connection, if it uses one
        self.session: Any = None
        self.settled = asyncio.Event()  # set once the server is ready or failed
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log: TextIO | None = None

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

    @property
    def needs_sign_in(self) -> bool:
        """The server refused every token kimicode holds for it: only `kimicode mcp login` helps."""
        return bool(getattr(self.auth, "sign_in_needed", False))

    def _write_log(self, text: str) -> None:
        if self._log is not None and not self._log.closed:
            self._log.write(redact(text))
            self._log.flush()

    async def _run(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self._log = open(self.log_path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
        try:
            await self._serve(log)
        except BaseException as exc:  # noqa: BLE001 - any failure of one server must stay contained
            if isinstance(exc, asyncio.CancelledError) and self._stop.is_set():
                pass
            elif self.state in ("starting", "ready") and not self._stop.is_set():
                self.fail(describe_failure(exc, self.config, self.unauthorized or self.needs_sign_in))
            else:
                self._write_log(f"[kimicode] during shutdown: {flatten(exc)}\n")
        finally:
            self.session = None
            if self.state in ("starting", "ready"):
                self.state = "stopped"
            self.settled.set()
            log.close()

    async def _serve(self, log: TextIO) -> None:
        import anyio
        from mcp.client.session import ClientSession
        from mcp_types import Implementation

        import kimicode

        config = self.config.expanded()
        self._write_log(f"[kimicode] starting MCP server '{config.name}': {config.describe()}\n")
        async with AsyncExitStack() as stack:
            read_stream, write_stream = await stack.enter_async_context(self._transport(config, log))
            session = await stack.enter_async_context(
                ClientSession(
                    read_stream,
                    write_stream,
                    message_handler=self._on_message,
                    **self.callbacks,
                    # Servers log, rate-limit and adapt by client name; the SDK's default says "mcp 0.1.0".
                    client_info=Implementation(name="kimicode", version=kimicode.__version__),
                )
            )
            with anyio.fail_after(self.start_timeout):
                await session.initialize()
                self.tools, self.held_back = await list_tools(session)
            await self._list_extras(session)
            if self.state != "starting":
                return  # garbage on stdout during the handshake already failed it
            self.session = session
            self.state = "ready"
            self._write_log(f"[kimicode] ready with {len(self.tools)} tools\n")
            if self.held_back:
                self._write_log(
                    f"[kimicode] not offered (they run only as tasks, which kimicode does not run yet): "
                    f"{', '.join(self.held_back)}\n"
                )
            self.settled.set()
            await self._stop.wait()

    async def _list_extras(self, session: Any) -> None:
        """Prompts and resources, bounded in time; a failing list is a note in the log, never a failure."""
        import anyio

        from kimicode.mcp.prompts import list_prompts
        from kimicode.mcp.resources import list_resources

        for what, lister in (("prompts", list_prompts), ("resources", list_resources)):
            try:
                with anyio.fail_after(EXTRAS_TIMEOUT):
                    setattr(self, what, await lister(session, self.config.name))
            except Exception as exc:  # noqa: BLE001 - the server's tools stay usable without its prompts
                self.notes.append(f"could not list its {what} (it works without them): {flatten(exc)}")
                self._write_log(f"[kimicode] {self.notes[-1]}\n")

    def _transport(self, config: McpServerConfig, log: TextIO) -> Any:
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
            return stdio_client(params, errlog=log)  # its stderr goes to its log file
        from kimicode.mcp.oauth import connection_auth

        self.auth = connection_auth(config, self.home)
        if config.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(config.url, headers=config.headers or None, auth=self.auth)
        return _streamable_http(config, self._on_http_response, self.auth)

    async def _on_http_response(self, response: Any) -> None:
        # The transport turns a 401 into a bare "error response"; the status is only visible here.
        self.unauthorized = response.status_code == 401  # a refresh's retry may still succeed
        if response.status_code == 401:
            challenge = response.headers.get("www-authenticate", "")
            self._write_log(f"[kimicode] 401 Unauthorized from {response.url} (WWW-Authenticate: {challenge})\n")
    async def _on_message(self, message: Any) -> None:
        # Transport faults (a stdout line that is not JSON-RPC) arrive here as exceptions.
        if isinstance(message, Exception):
            text = flatten(message)
            self._write_log(f"[kimicode] protocol error: {text}\n")
            self.fail(f"sent something that is not MCP on its output ({text[:120]})")


EXTRAS_TIMEOUT = 10.0  # to list a server's prompts, or its resources (s)
HTTP_TIMEOUT = 30.0  # connect, write, pool (s)
HTTP_STREAM_READ_TIMEOUT = 300.0  # a server may hold a streamed response open


def _streamable_http(config: McpServerConfig, on_response: Any, auth: Any = None) -> Any:
    from contextlib import asynccontextmanager

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    @asynccontextmanager
    async def connect() -> Any:
        # The SDK's own client settings, made here: a response stream may stay open for minutes, so only the
        # read timeout is long. Redirects are the transport's business (it follows them within the origin).
        timeout = httpx2.Timeout(HTTP_TIMEOUT, read=HTTP_STREAM_READ_TIMEOUT)
        hooks = {"response": [on_response]}
        async with httpx2.AsyncClient(
            headers=config.headers or None, timeout=timeout, event_hooks=hooks, auth=auth
        ) as client:
            async with streamable_http_client(config.url, http_client=client) as streams:
                yield streams

    return connect()


async def list_tools(session: Any) -> tuple[list[RemoteTool], list[str]]:
    """The server's tools kimicode can call, and the names of those that run only as tasks."""
    tools: list[RemoteTool] = []
    task_only: list[str] = []
    cursor: str | None = None
    while True:
        if cursor is None:
            listing = await session.list_tools()
        else:
            from mcp_types import PaginatedRequestParams

            listing = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        for tool in listing.tools:
            execution = getattr(tool, "execution", None)
            if getattr(execution, "task_support", None) == "required":
                task_only.append(tool.name)
                continue
            annotations = getattr(tool, "annotations", None)
            read_only = bool(getattr(annotations, "read_only_hint", False)) if annotations else False
            tools.append(
                RemoteTool(
                    name=tool.name,
                    description=tool.description or "",
                    input_schema=dict(tool.input_schema or {}),
                    read_only=read_only,
                )
            )
        cursor = listing.next_cursor
        if not cursor:
            return tools, task_only


def flatten(exc: BaseException) -> str:
    """The innermost meaningful message of a possibly nested exception group, on one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_failure(exc: BaseException, config: McpServerConfig, unauthorized: bool = False) -> str:
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    if unauthorized or _status_of(inner) == 401:
        return sign_in_needed(config)
    if isinstance(inner, FileNotFoundError) and config.transport == "stdio":
        return f"command not found: {config.command!r} (install it or fix the command in mcp.json)"
    if isinstance(inner, TimeoutError):
        return "did not finish starting in time (start timeout)"
    if is_connection_closed(inner):
        return "exited or closed the connection"
    if config.transport != "stdio":
        return f"cannot use {config.url}: {flatten(inner)}"
    return flatten(inner)


SIGN_IN_PREFIX = "needs you to sign in: run "


def sign_in_needed(config: McpServerConfig) -> str:
    """Why a server that answered 401 is unusable, and what to do about it."""
    if any(key.lower() == "authorization" for key in config.headers):
        return (
            "refused the token in its Authorization header (401 Unauthorized); check or renew the token "
            "its headers give in mcp.json"
        )
    return f"{SIGN_IN_PREFIX}{login_command(config.name)}"


def login_command(name: str) -> str:
    import shlex

    return f"`kimicode mcp login {shlex.quote(name)}`"


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed response (the SSE transport raises it as it is)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_connection_closed(exc: BaseException) -> bool:
    try:
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED
    except ImportError:  # pragma: no cover - the SDK is a dependency
        return False
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    import anyio

    return isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream))
