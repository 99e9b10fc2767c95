"""Moonshot's ``$web_search``: a search the endpoint runs itself, offered only on Moonshot's own API.

The tool list carries ``{"type": "builtin_function", "function": {"name": "$web_search"}}``. When the model
calls it, the endpoint has already searched; the call's arguments are handed back unchanged as the tool
result (the agent loop does that for every tool marked ``echoes_arguments``), and the next reply reads
the results. Nothing runs on this machine and nothing new leaves it.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from kimicode.tools.base import Tool, ToolContext, ToolResult
from kimicode.tools.params import ToolParams

MOONSHOT_HOSTS = frozenset({"api.moonshot.ai", "api.moonshot.cn"})


def is_moonshot_endpoint(base_url: str) -> bool:
    """Moonshot's own API (the builtin exists nowhere else, and other endpoints reject the tool type)."""
    return (urlsplit(base_url).hostname or "").lower().rstrip(".") in MOONSHOT_HOSTS


class WebSearchParams(ToolParams):
    """None declared: whatever the endpoint's search sends is handed back unchanged, never read here."""


class WebSearchTool(Tool):
    name: ClassVar[str] = "$web_search"
    description: ClassVar[str] = "Search the web (run by the Moonshot endpoint)."
    params: ClassVar[type[WebSearchParams]] = WebSearchParams
    read_only: ClassVar[bool] = True
    echoes_arguments: ClassVar[bool] = True

    def schema(self) -> dict[str, Any]:
        return {"type": "builtin_function", "function": {"name": self.name}}

    def summary(self, args: dict[str, Any]) -> str:
        query = args.get("query") or args.get("search_query") or ""
        return f"{self.name} {query}".rstrip() if isinstance(query, str) else self.name

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise AssertionError("$web_search is answered by the loop with the call's own arguments")
