"""kimicode/tools has no import circle, counting imports made only for type checking and inside functions:
what the tool context holds (background tasks, the todo list, the plan reviewer) sits below tools/base.py."""

from __future__ import annotations

import ast
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "kimicode" / "tools"


def imports_of(path: Path) -> set[str]:
    """Every kimicode.tools module ``path`` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kimicode.tools."):
            found.add(node.module.removeprefix("kimicode.tools."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("kimicode.tools.") for a in node.names if a.name.startswith("kimicode.tools.")}
    return found


def circle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, path = stack.pop()
        for target in graph.get(module, set()):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_no_module_of_the_tools_imports_itself_round_about() -> None:
    graph = {path.stem: imports_of(path) for path in TOOLS.glob("*.py")}
    assert {"background", "todo_list", "plan_review"} <= graph["base"]  # the context's parts, named by type
    circles = {module: circle for module in graph if (circle := circle_through(module, graph))}
    assert not circles, circles
