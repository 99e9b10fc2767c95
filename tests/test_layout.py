"""The package's shape: no import cycles, the front ends stay siblings, and no module is too long to read.

Every ``import`` counts, the lazy ones inside functions and those under ``if TYPE_CHECKING:`` too: a cycle
hidden in a function body, or one through the types a module names in its annotations, is still a cycle a
newcomer has to understand (a base type that knows its concrete subclasses, say).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kimicode"
MAX_LINES = 400  # a module one can hold in one's head (the built-in skills' scripts included)
FRONT_ENDS = ("kimicode.frontends.repl", "kimicode.frontends.headless", "kimicode.frontends.acp", "kimicode.frontends.web")


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package_dir: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the kimicode modules it imports (a package import points at the package's __init__)."""
    modules = {module_name(p, package_dir): p for p in package_dir.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("kimicode"):
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt == "kimicode":  # the version-only package root
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module: each holds at least one cycle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node] - {"kimicode"}:  # the version-only package root
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while (member := stack.pop()) != node:
                group.add(member)
            if group:
                groups.append(group | {node})

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def all_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """One cycle from each tangle, with the tangle's modules: a failure names every one, not only the first."""
    cycles = []
    for group in tangles(graph):
        cycle = find_cycle({node: graph[node] & group for node in group})
        assert cycle is not None  # a strongly connected group of two or more always has one
        cycles.append((cycle, sorted(group)))
    return sorted(cycles)


def test_the_import_graph_has_no_cycle() -> None:
    found = [f"{' -> '.join(cycle)}\n    (all tangled: {', '.join(group)})" for cycle, group in all_cycles(import_graph())]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_cycle_finder_sees_a_cycle_through_type_checking_imports(tmp_path: Path) -> None:
    # The finder's own check: two modules that import each other only for annotations are a cycle.
    package = tmp_path / "kimicode"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .todo import Todo\n")
    (package / "todo.py").write_text("from kimicode.base import Base\n")
    cycle = ["kimicode.base", "kimicode.todo", "kimicode.base"]
    assert all_cycles(import_graph(package)) == [(cycle, ["kimicode.base", "kimicode.todo"])]


def test_no_module_is_longer_than_one_can_hold_in_ones_head() -> None:
    lengths = {str(p.relative_to(PACKAGE.parent)): len(p.read_text(encoding="utf-8").splitlines())
               for p in PACKAGE.rglob("*.py")}
    too_long = sorted(f"{path}: {count} lines" for path, count in lengths.items() if count > MAX_LINES)
    assert not too_long, f"over {MAX_LINES} lines:\n" + "\n".join(too_long)


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_a_front_end_imports_no_other_front_end(front_end: str) -> None:
    others = [f for f in FRONT_ENDS if f != front_end]
    offenders = {
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if module.startswith(front_end)
        for target in targets
        if any(target.startswith(other) for other in others)
    }
    assert not offenders


def test_nothing_below_the_front_ends_imports_them() -> None:
    # kimicode.sdk is a front end for programs: its in-process mode runs the server's sessions
    above = ("kimicode.frontends", "kimicode.manage", "kimicode.cli", "kimicode.__main__", "kimicode.sdk")
    offenders = {
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if not module.startswith(above)
        for target in targets
        if target.startswith(("kimicode.frontends", "kimicode.manage"))
    }
    assert not offenders


def test_management_verbs_import_no_front_end() -> None:
    offenders = {
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if module.startswith("kimicode.manage")
        for target in targets
        if target.startswith(FRONT_ENDS)
    }
    assert not offenders
