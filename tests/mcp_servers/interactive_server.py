"""A real MCP server (stdio) that talks back to its client, for the tests.

Tools: countdown(steps) reports progress once per step (with a total and a message) and then answers;
roots() lists the roots the client declared; report() returns a resource link and an embedded binary resource; ask_name() asks the user, by elicitation, for a name and
a number of cups (``--defaults``: both fields carry defaults) and answers with what came back.
``--hold`` makes countdown wait, before its last step, until the file named by --hold exists, so a test can
look at the running call without sleeping.
"""

# No `from __future__ import annotations`: the SDK reads tool signatures at runtime.

import argparse
import base64
import json
import os

CHART = b"\x89PNG\r\n\x1a\nnot really a chart"  # the bytes report() embeds


def build_server(defaults: bool, hold: str) -> "object":
    import anyio
    from mcp.server.mcpserver import Context, MCPServer
    from mcp_types import BlobResourceContents, EmbeddedResource, ResourceLink, ToolAnnotations
    from pydantic import BaseModel, Field

    server = MCPServer("interactive", log_level="WARNING")

    if defaults:

        class Order(BaseModel):
            name: str = Field(default="Ada", description="Your name")
            cups: int = Field(default=2, description="How many cups")

    else:

        class Order(BaseModel):  # type: ignore[no-redef]
            name: str = Field(description="Your name")
            cups: int = Field(description="How many cups")

    @server.tool()
    async def countdown(steps: int, ctx: Context) -> str:
        """Count down, reporting progress at each step."""
        for done in range(1, steps + 1):
            if hold and done == steps:
                while not os.path.exists(hold):
                    await anyio.sleep(0.02)
            await ctx.report_progress(done, steps, f"step {done} of {steps}")
        return f"counted {steps}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def report() -> list:  # type: ignore[type-arg]
        """A link to a report and its chart, embedded as a binary resource."""
        link = ResourceLink(
            name="q3.csv", title="Q3 sales", uri="file:///reports/q3.csv", mime_type="text/csv",
            description="Sales by region", size=2048,
        )
        chart = BlobResourceContents(
            uri="file:///reports/../../etc/chart", mime_type="image/png", blob=base64.b64encode(CHART).decode()
        )
        return [link, EmbeddedResource(resource=chart)]

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def roots(ctx: Context) -> str:
        """The roots the client declared, as JSON."""
        listing = await ctx.session.list_roots()
        return json.dumps([{"uri": str(root.uri), "name": root.name} for root in listing.roots])

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))  # runs unasked, even without -y
    async def ask_name(ctx: Context) -> str:
        """Ask the user for a name and a number of cups."""
        answer = await ctx.elicit("Who is ordering tea?", Order)
        if answer.action == "accept":
            return f"accepted: {answer.data.name} wants {answer.data.cups} cups"
        return {"decline": "declined", "cancel": "cancelled"}[answer.action]

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--defaults", action="store_true")
    parser.add_argument("--hold", default="")
    options = parser.parse_args()
    build_server(options.defaults, options.hold).run()


if __name__ == "__main__":
    main()
