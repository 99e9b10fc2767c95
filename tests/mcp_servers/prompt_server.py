"""A real MCP server (stdio) with prompts and resources, for the tests.

Prompts: review(file, focus="") — file is required — answers with one user message naming both, then an
image (``--broken-prompts``: listing them fails). Resources: file:///notes.txt (text, NOTES) and file:///logo.png (binary, LOGO).
"""

# No `from __future__ import annotations`: the SDK reads prompt signatures at runtime.

NOTES = "Remember: the release is on Friday."
LOGO = b"\x89PNG\r\n\x1a\nnot really a logo"
PIXEL = b"\x89PNG\r\n\x1a\nreview pixel"  # the image the review prompt returns


def build_server(broken_prompts: bool = False) -> "object":
    import base64

    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.prompts.base import UserMessage
    from mcp_types import ImageContent

    server = MCPServer("prompts", log_level="WARNING")

    @server.prompt(description="Review one file")
    def review(file: str, focus: str = "") -> list:  # type: ignore[type-arg]
        about = f" with a focus on {focus}" if focus else ""
        image = ImageContent(type="image", data=base64.b64encode(PIXEL).decode(), mime_type="image/png")
        return [UserMessage(f"Please review {file}{about}."), UserMessage(image)]

    @server.resource("file:///notes.txt", name="notes", mime_type="text/plain")
    def notes() -> str:
        return NOTES

    @server.resource("file:///logo.png", name="logo", mime_type="image/png")
    def logo() -> bytes:
        return LOGO

    if broken_prompts:  # prompts/list fails: the server must stay usable

        async def broken() -> list:  # type: ignore[type-arg]
            raise ValueError("prompts are broken today")

        server.list_prompts = broken  # type: ignore[method-assign]
    return server


if __name__ == "__main__":
    import sys

    build_server("--broken-prompts" in sys.argv).run()  # type: ignore[attr-defined]
