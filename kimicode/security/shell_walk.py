"""One pass over tree-sitter's bash syntax tree: the simple commands, redirections and writes it holds.

Invariants:
- Every simple command is recorded in source order, those inside substitutions and parse errors included;
  a placeholder is appended before a command's words are walked, so nested commands come after it.
- Whatever runs code the walk cannot follow sets a flag rather than being skipped: `opaque` (control flow,
  functions, `eval`, a shell or interpreter given code, a program named by an expansion), `hidden` (code
  whose commands are not all recorded), `substitution`, `evaluates` (arithmetic, subscripts).
- Output redirection targets are writes unless they are a descriptor or a device that is not a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kimicode.security.launchers import inner_argvs, runs_hidden_code
from kimicode.security.lazy_re import LazyPattern
from kimicode.security.shell_types import Redirect, SimpleCommand
from kimicode.security.shell_words import (
    EVALUATED,
    TEXT_LEAVES,
    WORD_NODES,
    expands_prompt,
    hides_substitution,
    literal_value,
    node_text,
    plain_expansion,
)

if TYPE_CHECKING:
    from tree_sitter import Node

# Output targets that are not files. (`> -` is a file named "-".)
_NOT_WRITES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/1", "/dev/fd/2"})

# Statement node types the walker knows. Anything else is walked generically (children searched for
# statements and substitutions) and, when it is control flow, marks the command opaque.
_OPAQUE_STATEMENTS = frozenset(
    {
        "function_definition",
        "for_statement",  # also `select`
        "c_style_for_statement",
        "while_statement",  # also `until`
        "if_statement",
        "case_statement",
    }
)
_STATEMENTS = frozenset(
    {
        "command",
        "redirected_statement",
        "pipeline",
        "list",
        "subshell",
        "compound_statement",
        "negated_command",
        "variable_assignment",
        "variable_assignments",
        "declaration_command",
        "unset_command",
        "test_command",
    }
    | _OPAQUE_STATEMENTS
)
_SUBSTITUTIONS = frozenset({"command_substitution", "process_substitution"})
_FD = LazyPattern(r"^\d*-?$")  # `>&2`, `>&-` (close), `2>&1-` (move)


class Walk:
    """One pass over a syntax tree, collecting what ParsedCommand reports."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.commands: list[SimpleCommand] = []
        self.substitution = False
        self.writes: list[str] = []
        self.opaque = False
        self.evaluates = False
        self.hidden = False

    def text(self, node: Node) -> str:
        return node_text(self.data, node)

    # ---- statements

    def statement(self, node: Node) -> list[int]:
        """Walk one statement; return the indices of the simple commands it runs directly (not in substitutions)."""
        kind = node.type
        if kind == "command":
            return [self.command(node)]
        if kind == "redirected_statement":
            return self.redirected(node)
        if kind in ("variable_assignment", "variable_assignments"):
            return [self.bare_assignments(node)]
        if kind in ("declaration_command", "unset_command", "test_command"):
            return [self.builtin_like(node)]
        if kind == "list":
            return self.command_list(node)
        if kind in _OPAQUE_STATEMENTS:
            self.opaque = True
            self.hidden = self.hidden or kind == "function_definition"
        elif kind == "compound_statement" and node.child_count and node.children[0].type == "((":
            self.evaluates = True  # (( expr )): arithmetic
        return self.children(node)

    def children(self, node: Node) -> list[int]:
        return self.each(node.children)

    def each(self, nodes: Sequence[Node]) -> list[int]:
        """Walk sibling nodes: statements as statements, a parse error's pieces as if it were not there (what
        parsed around the error still runs), anything else searched for substitutions."""
        direct: list[int] = []
        for child in nodes:
            if child.type in _STATEMENTS:
                direct += self.statement(child)
            elif child.type == "ERROR":
                direct += self.children(child)
            elif child.type != "comment":
                self.scan(child)
        return direct

    def command_list(self, node: Node) -> list[int]:
        # `a && b || c` nests to the left, one level per operator: walk the spine without recursing, so a
        # long chain does not exhaust Python's stack.
        spine = [node]
        while spine[-1].child_count and spine[-1].children[0].type == "list":
            spine.append(spine[-1].children[0])
        direct = self.children(spine.pop())
        for level in reversed(spine):
            direct += self.each(level.children[1:])
        return direct

    def redirected(self, node: Node) -> list[int]:
        body = node.child_by_field_name("body")
        direct: list[int] = []
        if body is not None and body.type == "pipeline":
            # `a | b > f`: the redirection belongs to the last command of the pipeline.
            for child in body.children:
                if child.type in _STATEMENTS:
                    direct = self.statement(child)
                elif child.type != "comment":
                    self.scan(child)
        elif body is not None:
            direct = self.statement(body)
        redirects: list[Redirect] = []
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "body":
                continue
            if child.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                redirects += self.redirect(child)
            elif child.type in _STATEMENTS:
                self.statement(child)
            elif child.type != "comment":
                self.scan(child)
        # A single command keeps its redirections in its text: the question shows `git status > file`.
        whole = self.text(node) if body is not None and body.type == "command" else None
        for i in direct:
            cmd = self.commands[i]
            self.commands[i] = SimpleCommand(
                cmd.words, whole or cmd.text, cmd.assignments, cmd.redirects + tuple(redirects), cmd.literal
            )
        return direct

    def command(self, node: Node) -> int:
        index = len(self.commands)
        self.commands.append(SimpleCommand((), "", (), ()))  # placeholder keeps source order
        words: list[str] = []
        literal: list[bool] = []
        assignments: list[str] = []
        redirects: list[Redirect] = []
        children = node.children
        for i, child in enumerate(children):
            kind = child.type
            if kind == "variable_assignment":
                assignments.append(self.assignment(child))
            elif kind in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                redirects += self.redirect(child)
            elif kind == "command_name":
                inner = child.named_children[0] if child.named_children else child
                value, plain = self.word(inner)
                words.append(value)
                literal.append(plain)
            elif kind == "comment":
                continue
            elif kind == "$" and i + 1 < len(children) and children[i + 1].type == "string":
                continue  # $"..." (a translated string): the string that follows is the word
            elif child.is_named or node.field_name_for_child(i) == "argument":
                value, plain = self.word(child)
                words.append(value)
                literal.append(plain)
        self.commands[index] = SimpleCommand(
            tuple(words), self.text(node), tuple(assignments), tuple(redirects), tuple(literal)
        )
        if words:
            self.check_program(words, literal)
        return index

    def check_program(self, words: list[str], literal: list[bool]) -> None:
        if not literal[0]:
            self.opaque = True  # `$CMD args`: which program runs is decided at run time
            return
        for argv in [words, *inner_argvs(words)]:
            if argv and runs_hidden_code(argv):
                self.opaque = True

    def bare_assignments(self, node: Node) -> int:
        index = len(self.commands)
        self.commands.append(SimpleCommand((), "", (), ()))  # placeholder keeps source order
        parts = [node] if node.type == "variable_assignment" else node.named_children
        assignments = tuple(self.assignment(p) for p in parts if p.type == "variable_assignment")
        self.commands[index] = SimpleCommand((), self.text(node), assignments, ())
        return index

    def builtin_like(self, node: Node) -> int:
        """`export A=1`, `unset x`, `[[ -f x ]]`: recorded as a command whose words are its tokens."""
        index = len(self.commands)
        self.commands.append(SimpleCommand((), "", (), ()))
        words: list[str] = []
        literal: list[bool] = []
        self.tokens(node, words, literal)
        self.commands[index] = SimpleCommand(tuple(words), self.text(node), (), (), tuple(literal))
        return index

    def tokens(self, node: Node, words: list[str], literal: list[bool]) -> None:
        for child in node.children:
            kind = child.type
            if kind == "variable_assignment":
                words.append(self.assignment(child))
                literal.append(True)
            elif kind in WORD_NODES:
                value, plain = self.word(child)
                words.append(value)
                literal.append(plain)
            elif child.child_count == 0:
                words.append(self.text(child))
                literal.append(True)
            else:
                self.tokens(child, words, literal)

    def assignment(self, node: Node) -> str:
        value = node.child_by_field_name("value")
        name = node.child_by_field_name("name")
        if value is None or name is None:
            self.scan(node)
            return self.text(node)
        self.scan(name)  # a[$(cmd)]=1
        unquoted, plain = self.word(value)
        if not plain:
            return self.text(node)
        operator = self.data[name.end_byte : value.start_byte].decode("utf-8", "replace")
        return self.text(name) + operator + unquoted

    def redirect(self, node: Node) -> list[Redirect]:
        if node.type == "herestring_redirect":
            operand = node.named_children[-1] if node.named_children else None
            return [Redirect("<<<", self.word(operand)[0] if operand is not None else "")]
        if node.type == "heredoc_redirect":
            # `cat <<EOF > out | sh`: the grammar nests what follows the delimiter inside the heredoc node.
            found: list[Redirect] = []
            delimiter = ""
            quoted = False
            for child in node.children:
                if child.type == "heredoc_start":
                    raw = self.text(child)
                    quoted = any(c in raw for c in "'\"\\")
                    delimiter = raw.strip("'\"\\")
                elif child.type in ("file_redirect", "herestring_redirect"):
                    found += self.redirect(child)
                elif child.type in _STATEMENTS:
                    self.statement(child)
                elif child.type != "heredoc_body" or not quoted:
                    self.scan(child)  # the body: $( ) inside runs unless the delimiter is quoted
            return [Redirect("<<", delimiter), *found]
        descriptor = node.child_by_field_name("descriptor")
        destination = node.child_by_field_name("destination")
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) != "destination":
                self.scan(child)
        if destination is None:
            return [Redirect(self.text(node).strip(), "")]  # `>&-` closes a descriptor
        op_start = descriptor.end_byte if descriptor is not None else node.start_byte
        # The text between descriptor and target, not the grammar's tokens: `<>` parses as `<` and an error.
        operator = self.data[op_start : destination.start_byte].decode("utf-8", "replace").strip()
        op = (self.text(descriptor) if descriptor is not None else "") + operator
        target, _ = self.word(destination)
        fd_dup = operator in (">&", "<&") and _FD.match(target) is not None
        writes = operator in (">", ">>", ">|", "&>", "&>>", "<>") or (operator == ">&" and not fd_dup)
        if writes and target not in _NOT_WRITES:
            self.writes.append(target)
        return [Redirect(op, target)]

    # ---- words

    def scan(self, node: Node) -> None:
        """Find substitutions anywhere below a word, redirect or assignment, and walk the commands inside."""
        kind = node.type
        if kind in _SUBSTITUTIONS:
            self.substitution = True
            self.children(node)
            return
        if kind in EVALUATED or (kind == "expansion" and not plain_expansion(self.text(node))):
            self.evaluates = True
        if kind == "expansion" and expands_prompt(self.text(node)):
            self.substitution = True  # ${x@P} expands a prompt string, which runs $( ) inside the value
        elif kind in _STATEMENTS:
            self.statement(node)
            return
        elif kind in TEXT_LEAVES and node.named_child_count == 0:
            # The grammar reads some substitutions as plain text (backticks inside ${x:-...}); bash runs them.
            if hides_substitution(self.text(node)):
                self.substitution = True
                self.opaque = True  # something runs that we cannot see
                self.hidden = True
        for child in node.children:
            self.scan(child)

    def word(self, node: Node) -> tuple[str, bool]:
        """The word after quote removal, and whether it is plain text (else its source text is kept)."""
        self.scan(node)
        value = literal_value(self.data, node)
        return (value, True) if value is not None else (self.text(node), False)
