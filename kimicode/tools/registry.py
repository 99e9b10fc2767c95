"""The set of tools an agent may call, by name, and their JSON schemas for the model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from kimicode.tools.base import Tool


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._schemas: list[dict[str, Any]] | None = None
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool, *, replace: bool = False) -> None:
        """Register ``tool``; a second tool with the same name is an error unless ``replace``."""
        if tool.name in self._tools and not replace:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = None

    def remove(self, name: str) -> Tool | None:
        """Unregister a tool (e.g. when its MCP server goes away); returns it, or None if absent."""
        tool = self._tools.pop(name, None)
        if tool is not None:
            self._schemas = None
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """Schemas in registration order; built once per change, since every request sends them."""
        if self._schemas is None:
            self._schemas = [tool.schema() for tool in self._tools.values()]
        return list(self._schemas)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)


def swe_tools(background: bool = False) -> list[Tool]:
    """Fresh instances of the six SWE tools: bash, view, createfile, strreplace, insert, submit.

    ``background``: bash runs background tasks (agent and swarm modes, DESIGN.md B.9)."""
    from kimicode.tools.bash import BashTool
    from kimicode.tools.createfile import CreateFileTool
    from kimicode.tools.insert import InsertTool
    from kimicode.tools.strreplace import StrReplaceTool
    from kimicode.tools.submit import SubmitTool
    from kimicode.tools.view import ViewTool

    return [BashTool(background), ViewTool(), CreateFileTool(), StrReplaceTool(), InsertTool(), SubmitTool()]


def web_tools(base_url: str) -> list[Tool]:
    """The agent and swarm modes' web tools: fetch everywhere, Moonshot's $web_search on its own API."""
    from kimicode.tools.fetch import FetchTool
    from kimicode.tools.web_search import WebSearchTool, is_moonshot_endpoint

    tools: list[Tool] = [FetchTool()]
    if is_moonshot_endpoint(base_url):
        tools.append(WebSearchTool())
    return tools
