"""Bash words after quote removal: the value a program receives, or None when it is decided at run time.

Invariants:
- `literal` returns a value only for text bash passes on unchanged after quote removal; a word holding an
  expansion (`$x`, `${x}`, `$( )`, a glob, braces, a leading `~`) has no literal value, so the caller keeps
  its source text and treats it as unknown.
- The tables here classify syntax nodes and expansion text; they never run or look anything up.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kimicode.security.lazy_re import LazyPattern

if TYPE_CHECKING:
    from tree_sitter import Node

# Node types that are one word of a command (`tokens` reads these as a whole).
WORD_NODES = frozenset(
    {
        "word",
        "number",
        "string",
        "raw_string",
        "ansi_c_string",
        "translated_string",
        "concatenation",
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
        "brace_expression",
        "regex",
        "extglob_pattern",
        "test_operator",
        "variable_name",
    }
)
# Leaves whose text the grammar does not break up further: a substitution can hide in them.
TEXT_LEAVES = frozenset({"word", "regex", "string_content", "heredoc_content", "heredoc_body", "extglob_pattern"})
# Node types bash evaluates as arithmetic while expanding.
EVALUATED = frozenset({"arithmetic_expansion", "subscript"})

_ESCAPED = re.compile(r"\\.", re.S)
_HIDDEN_SUBSTITUTION = re.compile(r"`|\$\(")
_GLOB = re.compile(r"(?<!\\)[*?\[]")
_BRACE = re.compile(r"(?<!\\)\{[^{}]*(,|\.\.)[^{}]*(?<!\\)\}")
_UNESCAPE_WORD = re.compile(r"\\(\n|.)", re.S)
# Compiled on first use: only some commands need these (lazy_re.py says why).
_UNESCAPE_DQUOTE = LazyPattern(r'\\([$`"\\\n])')
_PROMPT_EXPANSION = LazyPattern(r"@P\}$")
# ${NAME}, ${#NAME}, ${1}, ${@}: nothing evaluated, nothing assigned.
_PLAIN_EXPANSION = LazyPattern(r"^\$\{#?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])\}$")
_ANSI_C = LazyPattern(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_ANSI_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b", "E": "\x1b"}


def node_text(data: bytes, node: Node) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def plain_expansion(text: str) -> bool:
    """`${NAME}` and the like: expanding it evaluates and assigns nothing."""
    return _PLAIN_EXPANSION.match(text) is not None


def expands_prompt(text: str) -> bool:
    """`${x@P}` expands a prompt string, which runs `$( )` inside the variable's value."""
    return _PROMPT_EXPANSION.search(text) is not None


def hides_substitution(text: str) -> bool:
    """Backticks or `$(` in text the grammar read as plain (inside `${x:-...}`): bash runs them."""
    return _HIDDEN_SUBSTITUTION.search(_ESCAPED.sub("", text)) is not None


def literal_value(data: bytes, node: Node) -> str | None:
    """The word's value after quote removal, or None when expansion decides it at run time."""
    kind = node.type
    raw = node_text(data, node)
    if kind == "word":
        if raw.startswith("~") or _GLOB.search(raw) or _BRACE.search(raw):
            return None
        return _UNESCAPE_WORD.sub(_unescape_one, raw)
    if kind in ("number", "test_operator"):
        return raw
    if kind == "raw_string":
        return raw[1:-1]
    if kind in ("string", "translated_string"):
        if any(c.is_named and c.type != "string_content" for c in node.children):
            return None
        inner = raw[raw.index('"') + 1 : -1] if raw.endswith('"') else raw
        return _UNESCAPE_DQUOTE.sub(_unescape_one, inner)
    if kind == "ansi_c_string":
        return _ansi_c(raw[2:-1])
    if kind == "concatenation":
        if _BRACE.search(raw):
            return None
        parts = [literal_value(data, c) for c in node.children]
        return None if any(p is None for p in parts) else "".join(p for p in parts if p is not None)
    return None  # expansions, substitutions, arithmetic, brace expressions ...


def _unescape_one(match: re.Match[str]) -> str:
    char = match.group(1)
    return "" if char == "\n" else char  # a backslash-newline is a line continuation


def _ansi_c(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc[0] in "xuU":
            return chr(int(esc[1:], 16))
        if esc[0].isdigit():
            return chr(int(esc, 8))
        if esc[0] == "c" and len(esc) == 2:
            return chr(ord(esc[1]) & 0x1F)
        return _ANSI_SIMPLE.get(esc, esc)

    return _ANSI_C.sub(one, body)
