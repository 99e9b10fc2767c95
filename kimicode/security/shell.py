"""Shell commands parsed, not guessed: `parse_command` tells what a bash command line runs, writes and hides.

The grammar is tree-sitter's bash grammar; the walk over its tree is shell_walk.py, words after quote removal
shell_words.py, the result's types shell_types.py. Everything the grammar does not tell us precisely is
reported rather than guessed: `opaque` for code we do not analyse (loops, functions, `eval`, `bash -c` ...),
`error` for text that does not parse. The policy decides what to do with those; here we only describe.

Invariants:
- A command line with a control character other than tab and newline is not parsed at all (bash and the
  grammar split words differently there): it comes back opaque, with an error and no commands.
- Nesting too deep for the walk comes back opaque, hidden and with an error, never partially trusted.
- Results are cached by source text; a ParsedCommand is immutable.
- Importing this module does not load the grammar (kimicode --version and --help stay fast).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kimicode.security.shell_types import ParsedCommand
from kimicode.security.shell_walk import Walk

if TYPE_CHECKING:
    from tree_sitter import Node

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@lru_cache(maxsize=1)
def _parser() -> Any:
    # Imported here so that starting kimicode (--version, --help) never pays for the grammar.
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


def _first_problem(node: Node) -> Node | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing or child.type == "ERROR":
            found = _first_problem(child)
            if found is not None:
                return found
    return None


@lru_cache(maxsize=1024)
def parse_command(source: str) -> ParsedCommand:
    """Describe a bash command line: its simple commands, substitutions, file writes, and what we cannot see."""
    control = _CONTROL.search(source)
    if control is not None:
        # bash splits words on space, tab and newline only; the grammar also on \r, \f, \v. Where the two
        # would read a command differently, neither reading can be trusted.
        return ParsedCommand(source, (), False, (), True, f"contains a control character ({control.group()!r})")
    data = source.encode("utf-8", "surrogatepass")
    root = _parser().parse(data).root_node
    walk = Walk(data)
    try:
        walk.children(root)
    except RecursionError:
        # Substitutions nested hundreds deep: nothing a person would write; refuse to guess.
        commands, writes = tuple(walk.commands), tuple(walk.writes)
        return ParsedCommand(source, commands, True, writes, True, "nested too deeply to analyse", True, True)
    error = ""
    if root.has_error:
        problem = _first_problem(root)
        if problem is None:
            error = "does not parse as bash"
        else:
            line, column = problem.start_point.row + 1, problem.start_point.column + 1
            if problem.is_missing:
                error = f"incomplete: missing {problem.type!r} at line {line}, column {column}"
            else:
                snippet = walk.text(problem)[:30].replace("\n", "\\n")
                error = f"does not parse at line {line}, column {column}: {snippet!r}"
    return ParsedCommand(
        source=source,
        commands=tuple(walk.commands),
        has_substitution=walk.substitution,
        file_writes=tuple(walk.writes),
        opaque=walk.opaque,
        error=error,
        evaluates=walk.evaluates,
        hidden=walk.hidden,
    )