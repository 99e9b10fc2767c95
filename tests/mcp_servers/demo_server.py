"""A small real MCP server used by the tests: stdio by default, streamable HTTP or SSE with --port.

Tools: echo(text), add(a, b), red_square() (a PNG image), crash() (the process exits mid-call),
slow(seconds). ``--whoami-tool`` adds client_info() (the clientInfo the client sent in its
initialize request, as JSON); ``--task-tools`` adds research() (``execution.taskSupport: "required"``) and
lookup() (``"optional"``), as MCP 2025-11-25 task-capable tools are listed. ``--start-delay`` sleeps before serving, to play a server that is slow to start;
``--garbage`` prints a non-protocol line on stdout before serving, as a misbehaving server does.
"""

# No `from __future__ import annotations`: the SDK reads tool signatures at runtime.

import argparse
import os
import struct
import sys
import time
import zlib


def red_square_png(size: int = 8) -> bytes:
    """A solid red PNG built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\xff\x00\x00" * size
    pixels = zlib.compress(row * size)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# Tool name -> the execution.taskSupport it is listed with (--task-tools).
TASK_SUPPORT = {"research": "required", "lookup": "optional"}


def build_server(name: str, getenv_tool: bool = False, whoami_tool: bool = False, task_tools: bool = False) -> "object":
    import anyio
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.utilities.types import Image
    from mcp_types import ToolAnnotations, ToolExecution

    class TaskListingServer(MCPServer):
        """Lists the tools named in TASK_SUPPORT with their execution.taskSupport, as a task-capable server does."""

        async def list_tools(self):  # type: ignore[no-untyped-def]
            tools = await super().list_tools()
            for tool in tools:
                if tool.name in TASK_SUPPORT:
                    tool.execution = ToolExecution(task_support=TASK_SUPPORT[tool.name])
            return tools

    server = TaskListingServer(name, log_level="WARNING")

    if whoami_tool:

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        def client_info(ctx: Context) -> str:
            """The clientInfo this server received in the initialize request, as JSON."""
            import json

            params = ctx.session.client_params
            info = params.client_info.model_dump(mode="json", exclude_none=True) if params else None
            return json.dumps(info)

    if task_tools:

        @server.tool()
        def research(topic: str) -> str:
            """A long research job that must run as a task."""
            return f"researched {topic}"

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        def lookup(word: str) -> str:
            """Look a word up (may run as a task or as a plain call)."""
            return f"looked up {word}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def red_square() -> Image:
        """An 8x8 red PNG."""
        return Image(data=red_square_png(), format="png")

    @server.tool()
    def crash() -> str:
        """Exit the whole process in the middle of the call."""
        sys.stderr.write("demo server: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)

    if getenv_tool:

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        def getenv(name: str) -> str:
            """The value of an environment variable of this server, or "(unset)"."""
            return os.environ.get(name, "(unset)")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await anyio.sleep(seconds)
        return f"slept {seconds}"

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="demo")
    parser.add_argument("--port", type=int, default=0, help="serve over HTTP on 127.0.0.1:PORT")
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--getenv-tool", action="store_true", help="add a tool that reads this server's environment")
    parser.add_argument("--whoami-tool", action="store_true", help="add a tool that tells the client's clientInfo")
    parser.add_argument("--task-tools", action="store_true", help="add tools listed with execution.taskSupport")
    options = parser.parse_args()

    if options.start_delay:
        time.sleep(options.start_delay)
    if options.garbage:
        print("this is not JSON-RPC", flush=True)
    server = build_server(options.name, options.getenv_tool, options.whoami_tool, options.task_tools)
    if options.port:
        server.run(options.transport, host="127.0.0.1", port=options.port)
    else:
        server.run()


if __name__ == "__main__":
    main()
