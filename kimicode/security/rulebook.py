"""The permission rules in force for one run, and which of them a call matches.

Rules come from config (user, then project), rules saved for this project, and this session's answers, in
that order; the first rule of the asked-for kind that matches wins. Reading a rule's text is rules.py; how a
match decides a call is policy.py.

Invariants:
- A rule with no pattern names every call of its tool; `patterned=True` lookups skip such rules, so only a
  rule that names the path, command or URL counts (what opens a secret or guarded place).
- An allow rule's `*` never stands for an option that loads other code (codeflags.py); deny and ask rules
  match such options like any other word.
- Adding a rule that is already in force changes nothing; rules are never removed during a run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kimicode.security import scope as S
from kimicode.security.decision import Action
from kimicode.security.rules import (
    Rule,
    command_matches,
    expand_path_pattern,
    parse_rule,
    parse_rules,
    path_matches,
    url_matches,
)
from kimicode.security.shell_types import SimpleCommand


class RuleBook:
    def __init__(self, entries: Iterable[tuple[str, str, str]] = ()) -> None:
        self.rules: list[Rule] = parse_rules(list(entries))

    def find(
        self,
        kind: Action,
        name: str,
        *,
        words: tuple[str, ...] | None = None,
        assignments: tuple[str, ...] = (),
        paths: list[Path] | None = None,
        url: str | None = None,
        workspace: Path | None = None,
        patterned: bool = False,
    ) -> Rule | None:
        """The first rule of `kind` for tool `name` that matches the command words, one of the path's forms or
        the URL given; a rule without a pattern matches unless `patterned`."""
        for rule in self.rules:
            if rule.kind != kind or not rule.names(name):
                continue
            if rule.pattern is None:
                if not patterned:
                    return rule
                continue
            # An allow rule's `*` never stands for an option that loads other code (codeflags.py).
            if words is not None and command_matches(rule.pattern, words, assignments, strict=kind == Action.ALLOW):
                return rule
            if paths is not None and path_matches(rule.pattern, paths, workspace or Path.cwd()):
                return rule
            if url is not None and url_matches(rule.pattern, url):
                return rule
        return None

    def find_url(self, kind: Action, name: str, written: str, canonical: str, patterned: bool = False) -> Rule | None:
        """A rule matching the URL as written or as read (host in lower case, default port left out): both
        name the same place once the URL has parsed."""
        for url in dict.fromkeys((written, canonical)):
            rule = self.find(kind, name, url=url, patterned=patterned)
            if rule is not None:
                return rule
        return None

    def for_command(self, kind: Action, part: SimpleCommand, patterned: bool = False) -> Rule | None:
        return self.find(kind, "bash", words=part.words, assignments=part.assignments, patterned=patterned)

    def roots(self, name: str, forms: list[Path], workspace: Path) -> list[Path]:
        """What the allow rules matching this path name literally: the part of each pattern before its first
        glob (`~/.claude/**` → ~/.claude, `~/.bash_aliases` → itself)."""
        roots: list[Path] = []
        for rule in self.rules:
            if (
                rule.kind == Action.ALLOW
                and rule.pattern is not None
                and rule.names(name)
                and path_matches(rule.pattern, forms, workspace)
            ):
                roots.append(S.literal_root(expand_path_pattern(rule.pattern, workspace)))
        return roots

    def spells_out(self, part: SimpleCommand) -> bool:
        """An allow rule that spells out this simple command as written, redirections included
        (`bash(tee -a ~/.bash_aliases < aliases.txt)`): the only kind that opens a guarded place."""
        text = " ".join(part.text.split())
        return any(
            rule.kind == Action.ALLOW
            and rule.names("bash")
            and rule.pattern is not None
            and " ".join(rule.pattern.split()) == text
            for rule in self.rules
        )

    def first_patterned(self, kind: Action, name: str) -> Rule | None:
        """The first rule of `kind` for `name` that names something (a deny rule a disguised program could
        slip past)."""
        return next((r for r in self.rules if r.kind == kind and r.names(name) and r.pattern is not None), None)

    def add(self, text: str, source: str) -> None:
        """An allow rule from an answer ("a", "always"); one already in force is not added twice."""
        rule = parse_rule(text, Action.ALLOW, source)
        if rule not in self.rules:
            self.rules.append(rule)

    def listing(self) -> list[Rule]:
        """Every rule in force, in the order they were added (config first, this session's answers last)."""
        return list(self.rules)
