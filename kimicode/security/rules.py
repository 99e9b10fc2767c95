"""Permission rules: ``tool(pattern)`` entries of ``[permissions] allow/ask/deny`` and how a call matches one.

Forms (DESIGN.md B.8):
- ``bash(git status)``, ``bash(npm test *)``: matched against each simple command of a shell command, its
  words joined by single spaces; ``*`` matches anything (spaces included); a trailing `` *`` also matches
  nothing, so ``bash(npm test *)`` covers ``npm test`` itself.
- ``view(~/.ssh/**)``, ``createfile(docs/**)``: path globs; ``~`` is the user's home, a relative pattern is
  relative to the workspace, ``*`` stays inside one path segment, ``**`` crosses segments.
  ``edit(...)`` names the three editing tools (createfile, strreplace, insert) at once.
- ``screenshot(https://*.example.com/*)``, ``fetch(https://docs.example.com/*)``: a glob over the URL
  (``*`` matches anything; in the host it stays inside the host).
- ``mcp__srv__*``, ``bash``, ``createfile``: a bare name (glob) matches every call of the tools it names.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kimicode.security.decision import Action

KINDS = tuple(Action)  # compares equal to "allow", "ask", "deny"
# Tools whose pattern is a path, and the alias that names all editing tools.
PATH_TOOLS = frozenset({"view", "createfile", "strreplace", "insert"})
EDIT_TOOLS = frozenset({"createfile", "strreplace", "insert"})
# "$" names a provider's builtin tool ($web_search).
_RULE = re.compile(r"^\s*([A-Za-z0-9_$*?\-\[\]]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


class RuleError(ValueError):
    """A rule that cannot be read; the message names it."""


@dataclass(frozen=True)
class Rule:
    kind: Action
    tool: str  # a tool name or a glob over names ("mcp__github__*"); "edit" = the editing tools
    pattern: str | None  # None: every call of the tool
    source: str = ""  # where it came from: "user config", "project config", "saved for this project", ...
    text: str = ""

    def describe(self) -> str:
        where = f" ({self.source})" if self.source else ""
        return f"{self.kind} {self.text}{where}"

    def names(self, tool_name: str) -> bool:
        if self.tool == "edit":
            return tool_name in EDIT_TOOLS
        return fnmatch.fnmatchcase(tool_name, self.tool)


def parse_rule(text: str, kind: str = "allow", source: str = "") -> Rule:
    if kind not in KINDS:
        raise RuleError(f"unknown permission kind '{kind}': use allow, ask or deny")
    match = _RULE.match(text or "")
    if not match:
        raise RuleError(f"cannot read the permission rule '{text}': write tool(pattern), e.g. bash(git status)")
    tool, pattern = match.group(1), match.group(2)
    if pattern is not None:
        pattern = pattern.strip()
        if not pattern or pattern == "*" or pattern == "**":
            pattern = None  # bash(*) is the same as bash
    return Rule(Action(kind), tool, pattern, source, text.strip())


def parse_rules(entries: list[tuple[str, str, str]]) -> list[Rule]:
    """``(kind, text, source)`` triples (Config.permission_rules) → rules; unreadable entries are skipped."""
    rules: list[Rule] = []
    for kind, text, source in entries:
        try:
            rules.append(parse_rule(text, kind, source))
        except RuleError:
            continue  # the config layer reports unreadable rules; a bad rule must not widen anything
    return rules


# -- matching ----------------------------------------------------------------------------------------


def command_matches(
    pattern: str, words: tuple[str, ...], assignments: tuple[str, ...] = (), strict: bool = False
) -> bool:
    """A bash pattern against one simple command.

    Deny and ask rules match broadly: the program also by its basename (`/usr/bin/rm` is still rm) and the
    command with or without its leading assignments. ``strict`` (allow rules) matches only what the pattern
    spells out: never by basename (`/tmp/evil/git` is not git), leading assignments written in the pattern
    (``bash(CI=1 npm test *)``), and each option or variable that makes the program load other code too
    (kimicode/security/codeflags.py): ``bash(pytest *)`` does not cover ``pytest -p evil``.
    """
    if not words:
        return False
    candidates = [" ".join(words)]
    program = os.path.basename(words[0])
    if not strict and program != words[0]:
        candidates.append(" ".join((program, *words[1:])))
    if assignments:
        spelled = [" ".join((*assignments, text)) for text in candidates]
        candidates = spelled if strict else candidates + spelled
    for text in candidates:
        if fnmatch.fnmatchcase(text, pattern) or (pattern.endswith(" *") and fnmatch.fnmatchcase(text, pattern[:-2])):
            if not strict:
                return True
            from kimicode.security.codeflags import covered

            return covered(pattern, words, assignments)
    return False


@lru_cache(maxsize=256)
def _path_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")  # dir/** covers the directory itself and everything below it
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def expand_path_pattern(pattern: str, workspace: Path) -> str:
    pattern = os.path.expanduser(pattern)
    if not os.path.isabs(pattern):
        pattern = os.path.join(str(workspace), pattern)
    # normpath would eat the "**" segment's meaning only if it contained "..": it does not.
    trailing = pattern.endswith("/**")
    normal = os.path.normpath(pattern[:-3] if trailing else pattern)
    return normal + "/**" if trailing else normal


def path_matches(pattern: str, paths: list[Path], workspace: Path) -> bool:
    regex = _path_regex(expand_path_pattern(pattern, workspace))
    return any(regex.match(str(p)) for p in paths)


@lru_cache(maxsize=256)
def _url_regex(pattern: str) -> re.Pattern[str]:
    """In the scheme and host a ``*`` stays inside the host (no ``/ ? # @``), so ``https://*.example.com/*``
    never matches ``https://evil.com/?x=.example.com/`` or ``https://a.example.com@evil.com/``."""
    scheme, sep, rest = pattern.partition("://")
    host, slash, path = rest.partition("/") if sep else ("", "", pattern)
    def glob(text: str, star: str) -> str:
        return "".join(star if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    head = "(?i:" + glob(scheme, "[^:/]*") + re.escape(sep) + glob(host, "[^/?#@]*") + ")" if sep else ""
    return re.compile(head + re.escape(slash) + glob(path, ".*") + r"\Z")


def url_matches(pattern: str, target: str) -> bool:
    return bool(_url_regex(pattern).match(target))
