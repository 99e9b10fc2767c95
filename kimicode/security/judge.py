"""The settings a policy decision depends on, and the verdicts every kind of call shares.

A Judge holds what the run was started with (yolo, trust, headless, the approval stance, the sandbox, the
rules, the workspace and added folders) and decides what all tools meet alike: a rule that matched, a file
read or written, a place -y does not reach. Shell commands (policy_bash.py) and pages (policy_web.py) build
on these; policy.py drives the decision for each tool call.

Invariants:
- Deny rules come first, then secret paths (refused unless an allow rule names them), then ask rules.
- A guarded place (kimicode's home, shell start-up files, other agents' config: scope.py) and a protected
  folder of the workspace (.git/, .kimicode/ ...) are never opened by -y or a session answer; such a
  decision is not rememberable.
- Headless runs never ask: what would be asked is refused with the way out in the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kimicode.security import paths as P
from kimicode.security import scope as S
from kimicode.security.decision import Action, Decision, allow
from kimicode.security.rulebook import RuleBook
from kimicode.security.rules import Rule
from kimicode.security.shell_types import ParsedCommand

STANCES = ("ask", "auto-edit", "plan")
# How a headless refusal tells the user the way out.
WITH_Y = "run with -y to allow"
ESCALATION = (
    'leaving the sandbox needs --allow-escalation (or escalation = "auto" in config.toml); -y does not approve it'
)


class Judge:
    def __init__(
        self,
        *,
        yolo: bool = False,
        trusted: bool = False,
        headless: bool = False,
        sandbox: Any = None,
        rules: Iterable[tuple[str, str, str]] = (),
        workspace: Path | None = None,
        home: Path | None = None,
        skill_dirs: Sequence[Path] = (),
        user_home: Path | None = None,
        stance: str = "ask",
        add_dirs: Sequence[Path] = (),
        allow_escalation: bool = False,
        path_dirs: Sequence[Path] | None = None,
    ) -> None:
        from kimicode.config import kimicode_home

        if stance not in STANCES:
            raise ValueError(f"unknown approval stance {stance!r}")
        self.stance = stance
        self.yolo = yolo
        self.trusted = trusted
        self.headless = headless
        self.sandbox = sandbox
        self.rules = RuleBook(rules)
        self.workspace = workspace
        self.home = home or kimicode_home()
        self.skill_dirs = [Path(os.path.realpath(d)) for d in skill_dirs]
        self.user_home = user_home
        self._home_seen: tuple[str, Path] | None = None
        # Folders that count as the workspace for -y (--add-dir, config add_dirs).
        self.add_dirs = [Path(os.path.normpath(os.path.abspath(d))) for d in add_dirs]
        # --allow-escalation / escalation = "auto": commands may leave the sandbox without a question.
        self.allow_escalation = allow_escalation
        self.path_dirs = list(path_dirs) if path_dirs is not None else S.path_dirs()

    # -- rules ---------------------------------------------------------------------------------------

    def ask_unless(self, rule: Rule | None, why: str, way_out: str = WITH_Y) -> Decision:
        """What the user decides: an allow ``rule`` or -y allows it; a headless run refuses it, the reason
        naming ``way_out``; otherwise it is asked."""
        if rule is not None:
            return allowed_by(rule)
        if self.yolo:
            return allow("yolo")
        if self.headless:
            return Decision(Action.DENY, f"{why}; {way_out}")
        return Decision(Action.ASK, why)

    def by_rule(self, rule: Rule) -> Decision:
        """What a matching rule decides: deny and ask rules are never covered by an answer."""
        if rule.kind == Action.DENY:
            return Decision(Action.DENY, f"denied by the rule {rule.describe()}", rule.describe(), False)
        if rule.kind == Action.ASK:
            if self.headless and not self.yolo:
                return Decision(
                    Action.DENY, f"the rule {rule.describe()} asks first; {WITH_Y}", rule.describe(), False
                )
            return Decision(Action.ASK, f"the rule {rule.describe()} asks first", rule.describe(), False)
        return allowed_by(rule)

    # -- files ---------------------------------------------------------------------------------------

    def path(self, name: str, target: Path, workspace: Path, write: bool) -> Decision:
        """Tool `name` reading or (`write`) changing `target`."""
        forms = P.variants(target)
        rule = self.rules.find(Action.DENY, name, paths=forms, workspace=workspace)
        if rule is not None:
            return self.by_rule(rule)
        explicit = self.rules.find(Action.ALLOW, name, paths=forms, workspace=workspace, patterned=True)
        secret = P.secret_reason(target, self.home, self.resolved_user_home())
        if secret and explicit is None:
            return Decision(
                Action.DENY, f"{secret}; only an allow rule such as {name}({shown(target)}) opens it", "", False
            )
        rule = self.rules.find(Action.ASK, name, paths=forms, workspace=workspace)
        if rule is not None:
            return self.by_rule(rule)
        if secret and explicit is not None:
            return allowed_by(explicit)
        in_scope = S.in_scope(target, self.bases(workspace))
        if write:
            return self._write(name, target, workspace, forms, explicit, in_scope)
        if in_scope or any(P.inside(f, d) for f in forms for d in self.skill_dirs):
            return allow("read inside the workspace")
        return self.ask_unless(explicit, "reads outside the workspace")

    def _write(
        self, name: str, target: Path, workspace: Path, forms: list[Path], explicit: Rule | None, in_scope: bool
    ) -> Decision:
        # A guarded place opens to a rule that names it (`createfile(~/.bash_aliases)`,
        # `edit(~/.claude/**)`), never to a broader one (`edit(~/**)`).
        guarded = self.guarded(target, workspace, self.rules.roots(name, forms, workspace))
        if guarded:
            return self.out_of_scope(f"writes {guarded}", f"a rule such as {name}({shown(target)})")
        if explicit is not None:
            return allowed_by(explicit)
        protected = self.protected_reason(target, workspace)
        if protected:
            return self.protected(protected)
        if in_scope:  # the workspace and --add-dir folders
            rule = self.rules.find(Action.ALLOW, name, paths=forms, workspace=workspace)
            if rule is not None:
                return allowed_by(rule)
            if self.stance == "auto-edit":
                return allow("auto-edit: a file edit inside the workspace")
            if self.yolo:
                return allow("yolo")
        elif self.yolo:
            return self.out_of_scope(
                "writes outside the workspace",
                f"--add-dir {shown(target.parent)} or a rule such as {name}({shown(target.parent)}/**)",
            )
        why = "changes files" if in_scope else "writes outside the workspace"
        if self.headless:
            return Decision(Action.DENY, f"{why}; {WITH_Y}")
        return Decision(Action.ASK, why, "", in_scope)

    def bases(self, workspace: Path) -> list[Path]:
        return [workspace, *self.add_dirs]

    def guarded(self, target: Path, workspace: Path, named: Sequence[Path] = ()) -> str:
        """The guarded place a write to ``target`` changes (kimicode/security/scope.py), "" when none;
        ``named``: folders (or files) allow rules name, which count as --add-dir does."""
        return S.guard_reason(
            target,
            [*self.bases(workspace), *named],
            kimicode_home=self.home,
            home=self.resolved_user_home(),
            on_path=self.path_dirs,
        )

    def protected_reason(self, target: Path, workspace: Path) -> str:
        """Protected folders (.git/, .kimicode/, ...) of the workspace and of every added folder."""
        for base in self.bases(workspace):
            if P.is_inside_workspace(target, base):
                reason = P.protected_reason(target, base, self.resolved_user_home())
                if reason:
                    return reason
        return ""

    def out_of_scope(self, why: str, remedy: str) -> Decision:
        """A write -y does not cover: refused headless, asked (every time) otherwise."""
        if self.headless:
            return Decision(Action.DENY, f"{why}; -y covers the workspace only: {remedy} allows it", "", False)
        return Decision(Action.ASK, why, "", False)

    def protected(self, protected: str) -> Decision:
        """A write to a protected folder: only yolo in a trusted folder runs it unasked."""
        if self.yolo and self.trusted:
            return allow("yolo in a trusted folder")
        if self.headless:
            return Decision(Action.DENY, f"writes {protected}; only a trusted folder with -y allows it", "", False)
        return Decision(Action.ASK, f"writes {protected}", "", False)

    # -- what the machine and the command line are ---------------------------------------------------

    def resolved_user_home(self) -> Path:
        if self.user_home:
            return self.user_home
        # The home folder is "~" expanded, which depends on $HOME alone while it is set: kept with the
        # value it came from, and built again when that changes (a decision asks for it several times).
        home = os.environ.get("HOME")
        if home is None:
            return P.user_home()
        seen = self._home_seen
        if seen is None or seen[0] != home:
            seen = self._home_seen = (home, P.user_home())
        return seen[1]

    def sandboxed(self) -> bool:
        return self.sandbox is not None and getattr(self.sandbox, "mode", "off") != "off"

    def read_only(self, parsed: ParsedCommand, workspace: Path, words_checked: bool = False) -> tuple[str, list[str]]:
        """Why the command line, and each of its simple commands, is not proven read-only ("" when it is)."""
        from kimicode.security.readonly import Where, read_only_problems

        where = Where(workspace, self.home, self.resolved_user_home(), self.trusted, words_checked)
        return read_only_problems(parsed, where)


def allowed_by(rule: Rule) -> Decision:
    return allow(f"allowed by {rule.describe()}", rule.describe())


def shown(path: Path) -> str:
    """A path as the user reads it: the home folder as ~."""
    home = str(P.user_home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + os.sep) else text
