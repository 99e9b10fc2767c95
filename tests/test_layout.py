"""The package's import graph: no cycles, and the front ends stay siblings.

Every ``import`` counts, the lazy ones inside functions too: a cycle hidden in a function body is still a
cycle a newcomer has to understand. Imports under ``if TYPE_CHECKING:`` do not: they name a type for an
annotation and never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kimicode"
FRONT_ENDS = ("kimicode.frontends.repl", "kimicode.frontends.headless", "kimicode.frontends.acp")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def import_graph() -> dict[str, set[str]]:
    """module -> the kimicode modules it imports (a package import points at the package's __init__)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for block in [n for n in ast.walk(tree) if _type_checking_block(n)]:
            block.body = []  # annotations only: no load-order dependency (cleared before the walk below)
        for node in ast.walk(tree):
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


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


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
    above = ("kimicode.frontends", "kimicode.manage", "kimicode.cli", "kimicode.__main__")
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
