"""The one place that decides whether a tool call runs now, is asked for, or is refused.

Order of precedence, per call: deny rules; secret paths (denied unless an allow rule names them); ask rules;
protected writes and sandbox escalations (asked every time: a session answer never covers them); then what
the stance allows without asking — allow rules (configured, saved, and this session's answers), read-only
actions inside the workspace, commands a working sandbox contains in a trusted folder, or everything under
yolo. What is left is asked for in an interactive run and refused in a headless one (DESIGN.md B.8).

The approval stance, which the REPL cycles with Shift-Tab, is decided here too: "ask" (the rules above),
"auto-edit" (file edits inside the workspace run unasked; commands still ask) and "plan" (only what reads:
every write, and every command that is not known to be read-only, is refused with a reason telling the model
it is planning — whatever yolo, trust or the rules say; the rules still apply to what it reads).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from kimicode.security import paths as P
from kimicode.security import scope as S
from kimicode.security.rules import (
    EDIT_TOOLS,
    PATH_TOOLS,
    Rule,
    command_matches,
    expand_path_pattern,
    parse_rule,
    parse_rules,
    path_matches,
    url_matches,
)
from kimicode.tools.base import Tool, ToolContext, ToolError

Action = Literal["allow", "ask", "deny"]
STANCES = ("ask", "auto-edit", "plan")
PLAN_RULE = "plan mode"
SESSION_SOURCE = "this session"
SAVED_SOURCE = "saved for this project"  # the same label config layering gives them
# How a headless refusal tells the user the way out.
_WITH_Y = "run with -y to allow"
_ESCALATION = 'leaving the sandbox needs --allow-escalation (or escalation = "auto" in config.toml); -y does not approve it'


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # one line: why (names the rule or the path class)
    rule: str = ""  # the rule that decided, with its source
    rememberable: bool = True  # False: a session ("a") or "always" answer must not cover it
    # Allowed as read-only where nothing may write (headless without -y, plan mode): the command runs in the
    # sandbox with the whole file system read-only, the workspace included, so a misjudged command cannot write.
    read_only_everything: bool = False

    @property
    def planning(self) -> bool:
        """Refused because the stance is "plan" (the model is told to plan instead)."""
        return self.rule == PLAN_RULE


_STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}


def _stricter(first: Decision, second: Decision) -> Decision:
    return second if _STRICTNESS[second.action] > _STRICTNESS[first.action] else first


def _allow(reason: str, rule: Rule | None = None) -> Decision:
    return Decision("allow", reason, rule.describe() if rule else "")


class Policy:
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
        self.rules: list[Rule] = parse_rules(list(rules))
        self.workspace = workspace
        self.home = home or kimicode_home()
        self.skill_dirs = [Path(os.path.realpath(d)) for d in skill_dirs]
        self.user_home = user_home
        # Folders that count as the workspace for -y (--add-dir, config add_dirs).
        self.add_dirs = [Path(os.path.normpath(os.path.abspath(d))) for d in add_dirs]
        # --allow-escalation / escalation = "auto": commands may leave the sandbox without a question.
        self.allow_escalation = allow_escalation
        self.path_dirs = list(path_dirs) if path_dirs is not None else S.path_dirs()

    # -- the decision --------------------------------------------------------------------------------

    def decide(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        if self.stance == "plan" and not self._only_reads(tool, args, ctx):
            what = "a command that is not read-only" if tool.name == "bash" else "a change"
            return Decision("deny", f"plan mode: {what}; nothing changes until the user accepts a plan", PLAN_RULE, False)
        name = tool.name
        if name == "bash":
            decision = self._bash(tool, args, ctx)
            if self.stance == "plan" and decision.action == "allow":
                # Plan mode let it through as read-only: yolo, trust or a rule do not make it writable.
                decision = replace(decision, read_only_everything=True)
            return decision
        if name == "screenshot":
            page = self._screenshot(tool, args, ctx)
            reference = str(args.get("reference") or "").strip()
            if not reference:
                return page
            # The reference's pixels go to the model: the same decision as a `view` of that file.
            return _stricter(page, self._path(tool.name, ctx.resolve(reference), ctx.workspace, write=False))
        if name == "fetch":
            return self._fetch(tool, args)
        if (name in PATH_TOOLS or not name.startswith("mcp__")) and isinstance(args.get("path"), str):
            return self._path_tool(tool, args, ctx)
        return self._other(tool, args)

    def _only_reads(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> bool:
        """What plan mode lets through: read-only tools, and commands known to be read-only, in the sandbox."""
        if tool.name != "bash":
            return tool.read_only
        from kimicode.security.shell import parse_command

        if str(args.get("escalate") or "").strip() or args.get("background") is True:
            return False
        line, parts = self._read_only(parse_command(str(args.get("command") or "")), ctx.workspace)
        return not line and not any(parts)

    def _other(self, tool: Tool, args: dict[str, Any]) -> Decision:
        name = tool.name
        for kind in ("deny", "ask", "allow"):
            rule = self._rule(kind, name)
            if rule is not None:
                return self._by_rule(rule)
        if tool.read_only:
            return _allow("read-only")
        if self.yolo:
            return _allow("yolo")
        if self.headless:
            return Decision("deny", f"has side effects; {_WITH_Y}")
        return Decision("ask", "has side effects")

    def _by_rule(self, rule: Rule) -> Decision:
        if rule.kind == "deny":
            return Decision("deny", f"denied by the rule {rule.describe()}", rule.describe(), False)
        if rule.kind == "ask":
            if self.headless and not self.yolo:
                return Decision("deny", f"the rule {rule.describe()} asks first; {_WITH_Y}", rule.describe(), False)
            return Decision("ask", f"the rule {rule.describe()} asks first", rule.describe(), False)
        return _allow(f"allowed by {rule.describe()}", rule)

    # -- files ---------------------------------------------------------------------------------------

    def _path_tool(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        try:
            target = ctx.resolve(args["path"])
        except ToolError:
            return _allow("no path to check")  # the tool itself reports the empty path
        return self._path(tool.name, target, ctx.workspace, write=not tool.read_only)

    def _path(self, name: str, target: Path, workspace: Path, write: bool) -> Decision:
        forms = P.variants(target)
        rule = self._rule("deny", name, paths=forms, workspace=workspace)
        if rule is not None:
            return self._by_rule(rule)
        explicit = self._rule("allow", name, paths=forms, workspace=workspace, patterned=True)
        secret = P.secret_reason(target, self.home, self._user_home())
        if secret and explicit is None:
            return Decision("deny", f"{secret}; only an allow rule such as {name}({_shown(target)}) opens it", "", False)
        rule = self._rule("ask", name, paths=forms, workspace=workspace)
        if rule is not None:
            return self._by_rule(rule)
        if secret:
            return _allow(f"allowed by {explicit.describe()}", explicit)  # type: ignore[union-attr]
        bases = self._bases(workspace)
        inside = P.is_inside_workspace(target, workspace)
        in_scope = S.in_scope(target, bases)
        if write:
            # A guarded place opens to a rule that names it (`createfile(~/.bash_aliases)`,
            # `edit(~/.claude/**)`), never to a broader one (`edit(~/**)`).
            guarded = self._guarded(target, workspace, self._rule_roots(name, forms, workspace))
            if guarded:
                return self._out_of_scope(f"writes {guarded}", f"a rule such as {name}({_shown(target)})")
            if explicit is not None:
                return _allow(f"allowed by {explicit.describe()}", explicit)
            protected = self._protected_reason(target, workspace)
            if protected:
                return self._protected(protected, None)
            if in_scope:  # the workspace and --add-dir folders
                rule = self._rule("allow", name, paths=forms, workspace=workspace)
                if rule is not None:
                    return _allow(f"allowed by {rule.describe()}", rule)
                if self.stance == "auto-edit":
                    return _allow("auto-edit: a file edit inside the workspace")
                if self.yolo:
                    return _allow("yolo")
            elif self.yolo:
                return self._out_of_scope("writes outside the workspace", f"--add-dir {_shown(target.parent)} or a rule such as {name}({_shown(target.parent)}/**)")
            why = "changes files" if in_scope else "writes outside the workspace"
            if self.headless:
                return Decision("deny", f"{why}; {_WITH_Y}")
            return Decision("ask", why, "", in_scope)
        if in_scope or any(P.inside(f, d) for f in forms for d in self.skill_dirs):
            return _allow("read inside the workspace")
        if explicit is not None:
            return _allow(f"allowed by {explicit.describe()}", explicit)
        if self.yolo:
            return _allow("yolo")
        if self.headless:
            return Decision("deny", f"reads outside the workspace; {_WITH_Y}")
        return Decision("ask", "reads outside the workspace")

    def _bases(self, workspace: Path) -> list[Path]:
        return [workspace, *self.add_dirs]

    def _guarded(self, target: Path, workspace: Path, named: Sequence[Path] = ()) -> str:
        """The guarded place a write to ``target`` changes (kimicode/security/scope.py), "" when none;
        ``named``: folders (or files) allow rules name, which count as --add-dir does."""
        return S.guard_reason(
            target, [*self._bases(workspace), *named], kimicode_home=self.home, home=self._user_home(), on_path=self.path_dirs
        )

    def _rule_roots(self, name: str, forms: list[Path], workspace: Path) -> list[Path]:
        """What the allow rules matching this path name literally: the part of each pattern before its first
        glob (`~/.claude/**` → ~/.claude, `~/.bash_aliases` → itself)."""
        roots: list[Path] = []
        for rule in self.rules:
            if rule.kind == "allow" and rule.pattern is not None and rule.names(name) and path_matches(rule.pattern, forms, workspace):
                roots.append(S.literal_root(expand_path_pattern(rule.pattern, workspace)))
        return roots

    def _protected_reason(self, target: Path, workspace: Path) -> str:
        """Protected folders (.git/, .kimicode/, ...) of the workspace and of every added folder."""
        for base in self._bases(workspace):
            if P.is_inside_workspace(target, base):
                reason = P.protected_reason(target, base, self._user_home())
                if reason:
                    return reason
        return ""

    def _out_of_scope(self, why: str, remedy: str) -> Decision:
        """A write -y does not cover: refused headless, asked (every time) otherwise."""
        if self.headless:
            return Decision("deny", f"{why}; -y covers the workspace only: {remedy} allows it", "", False)
        return Decision("ask", why, "", False)

    def _protected(self, protected: str, explicit: Rule | None) -> Decision:
        if explicit is not None:
            return _allow(f"allowed by {explicit.describe()}", explicit)
        if self.yolo and self.trusted:
            return _allow("yolo in a trusted folder")
        if self.headless:
            return Decision("deny", f"writes {protected}; only a trusted folder with -y allows it", "", False)
        return Decision("ask", f"writes {protected}", "", False)

    # -- screenshots ---------------------------------------------------------------------------------

    def _screenshot(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        from kimicode.vision.browser import resolve_target
        from kimicode.vision.errors import VisionError

        target = str(args.get("target") or "").strip()
        if not target:
            return _allow("no target to check")
        try:
            url = resolve_target(target, ctx.workspace)  # what the browser will open, read the same way
        except VisionError:
            return _allow("no page to open")  # the tool reports the missing file
        parts = urlsplit(url)
        if parts.scheme == "file":
            local = Path(os.path.expanduser(target)) if "://" not in target else Path(parts.path)
            return self._path(tool.name, local if local.is_absolute() else ctx.workspace / local, ctx.workspace, False)
        if parts.scheme in ("http", "https"):
            return self._network(tool, url, "opens a page")
        if parts.scheme in ("data", "about"):
            # A page written inline: the browser's gate and file route judge whatever it loads.
            return _allow("a page given inline")
        for kind in ("deny", "ask"):
            rule = self._rule(kind, tool.name, url=target)
            if rule is not None:
                return self._by_rule(rule)
        rule = self._rule("allow", tool.name, url=target)
        if rule is not None:
            return _allow(f"allowed by {rule.describe()}", rule)
        if self.yolo:
            return _allow("yolo")
        if self.headless:
            return Decision("deny", f"opens a {parts.scheme or 'local'}: page; {_WITH_Y} or a screenshot(URL) rule")
        return Decision("ask", f"opens a {parts.scheme or 'local'}: page")

    # -- fetch ---------------------------------------------------------------------------------------

    def _fetch(self, tool: Tool, args: dict[str, Any]) -> Decision:
        url = str(args.get("url") or "").strip()
        if not url:
            return _allow("no URL to check")  # the tool itself reports the empty URL
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            return Decision(
                "deny", f"fetch reads http and https URLs only, not {scheme or 'this'}: (local files: use view)",
                "", False,
            )
        return self._network(tool, url, "reads a page")

    def _network(self, tool: Tool, url: str, doing: str) -> Decision:
        """A URL reached over the network (fetch, screenshot). It is read by the one parser the tools use,
        and a name is judged on the address it resolves to; that lookup is pinned, so the tool connects
        to the address decided on here (kimicode/security/urls.py)."""
        from kimicode.security import urls
        from kimicode.security.network import KIND_TEXT, LOCAL_ADDRESSES, NON_PUBLIC

        try:
            target = urls.parse(url)
        except urls.UrlError as exc:
            return Decision("deny", f"{url!r} is refused: {exc}", "", False)
        host = target.host
        kind = target.kind
        if kind == "metadata":
            return Decision("deny", f"{doing} on {host}, {KIND_TEXT['metadata']}: always refused", "", False)
        for action in ("deny", "ask"):
            rule = self._url_rule(action, tool.name, url, target.url)
            if rule is not None:
                return self._by_rule(rule)
        if kind == "name":
            addresses = urls.resolve_now(target)
            problem = urls.connect_problem(target, addresses) if addresses else ""
            if problem:  # unresolvable names go on: the tool says so when it tries
                return Decision("deny", f"{doing} on {host}: refused, {problem}", "", False)
        elif kind == "loopback" and (not target.literal or host in LOCAL_ADDRESSES):
            addresses = () if target.literal else urls.resolve_now(target)
            problem = urls.connect_problem(target, addresses) if addresses else ""
            if problem:  # app.localhost answered by something other than this machine
                return Decision("deny", f"{doing} on {host}: refused, {problem}", "", False)
            return _allow("a page on this machine")
        elif kind in NON_PUBLIC or kind == "loopback":
            # -y does not reach here: the private network is what a hostile page or prompt aims at. Only
            # a rule that names the address opens it; otherwise ask every time.
            rule = self._url_rule("allow", tool.name, url, target.url, patterned=True)
            if rule is not None:
                return _allow(f"allowed by {rule.describe()}", rule)
            why = f"{doing} on {host}, an address on {KIND_TEXT[kind]}"
            if self.headless:
                return Decision("deny", f"{why}; only a rule such as {tool.name}({target.scheme}://{target.netloc}/*) allows it", "", False)
            return Decision("ask", why, "", False)
        rule = self._url_rule("allow", tool.name, url, target.url)
        if rule is not None:
            return _allow(f"allowed by {rule.describe()}", rule)
        if self.yolo:
            return _allow("yolo")
        if self.headless:
            return Decision("deny", f"{doing} on {host}, off this machine; {_WITH_Y} or a {tool.name}(URL) rule")
        return Decision("ask", f"{doing} on {host}, off this machine")

    def _url_rule(self, kind: Action, name: str, written: str, canonical: str, patterned: bool = False) -> Rule | None:
        """A rule matching the URL as written or as read (host in lower case, default port left out): both
        name the same place once the URL has parsed."""
        for url in dict.fromkeys((written, canonical)):
            rule = self._rule(kind, name, url=url, patterned=patterned)
            if rule is not None:
                return rule
        return None

    # -- shell commands ------------------------------------------------------------------------------

    def _bash(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        from kimicode.security.runs import runs, unknown_reason
        from kimicode.security.shell import parse_command

        command = str(args.get("command") or "")
        escalate = str(args.get("escalate") or "").strip()
        parsed = parse_command(command)
        parts = parsed.commands
        workspace = ctx.workspace
        # Deny and ask rules also see what a wrapper runs (`sudo rm x`, `find . -exec rm {} +`, `xargs rm`)
        # and what a literal `bash -c 'rm x'` runs.
        every = runs(parsed)
        for argv in every:
            rule = self._rule("deny", "bash", words=argv)
            if rule is not None:
                return self._by_rule(rule)
        deny = next((r for r in self.rules if r.kind == "deny" and r.names("bash") and r.pattern is not None), None)
        if deny is not None:
            # A deny rule matches names; a program decided at run time could be the denied one in disguise.
            unknown = unknown_reason(parsed, workspace)
            if unknown:
                why = f"{unknown}; the rule {deny.describe()} cannot be checked against it"
                if self.yolo or self.headless:
                    return Decision("deny", why, deny.describe(), False)
                return Decision("ask", why, deny.describe(), False)
        secret = self._secret_words(parts, workspace)
        if secret:
            return Decision("deny", f"names {secret}; only an allow rule for the command opens it", "", False)
        for argv in every:
            rule = self._rule("ask", "bash", words=argv)
            if rule is not None:
                return self._by_rule(rule)
        line, part_problems = self._read_only(parsed, workspace, words_checked=True)
        read_only = [not why for why in part_problems]
        writes = self._write_targets(parsed, parts, read_only, workspace)
        explicit = [self._rule("allow", "bash", words=part.words, assignments=part.assignments, patterned=True) is not None for part in parts]
        exact = [self._exact_rule(part) for part in parts]
        if not all(exact):  # only a rule spelling out this very command (no glob) opens a guarded place
            guarded = next((why for why in (self._guarded(path, workspace) for path, _ in writes) if why), "")
            if guarded:
                return self._out_of_scope(f"writes {guarded}", f"a rule such as bash({' '.join(parts[0].text.split())})" if len(parts) == 1 else "a rule naming the command")
        protected = next((why for why in (self._protected_reason(path, workspace) for path, _ in writes) if why), "")
        if protected and not (self.yolo and self.trusted):
            why = f"writes {protected}"
            if escalate:
                why += f"; asks to run outside the sandbox: {escalate}"
            if self.headless:
                return Decision("deny", f"{why}; only a trusted folder with -y allows it", "", False)
            return Decision("ask", why, "", False)
        if escalate and not self.allow_escalation:
            why = f"asks to run outside the sandbox: {escalate}"
            if self.headless:
                return Decision("deny", f"{why}; {_ESCALATION}", "", False)
            return Decision("ask", why, "", False)
        contained = self._sandboxed() and not escalate
        if self.yolo and not contained:
            # Without the sandbox, what the command is known to write must lie in the workspace (or --add-dir).
            bases = self._bases(workspace)
            outside = [
                path for path, certain in writes
                if certain and not S.in_scope(path, bases) and not P.inside(path, Path("/dev"))  # /dev/null, /dev/stderr
            ]
            if outside and not (all(explicit) or all(exact)):
                return self._out_of_scope(f"writes outside the workspace ({_shown(outside[0])})", f"--add-dir {_shown(outside[0].parent)}")
        if contained and self.trusted:
            return _allow("contained by the sandbox")
        if self.yolo:
            return _allow("yolo approves leaving the sandbox" if escalate else "yolo")
        new = [
            (part, why)
            for part, why in zip(parts, part_problems)
            if why and self._rule("allow", "bash", words=part.words, assignments=part.assignments) is None
        ]
        problems: list[str] = []
        if parsed.error:
            problems.append(f"cannot be parsed ({parsed.error})")
        elif parsed.opaque:
            problems.append("uses shell constructs kimicode does not analyse")
        if new and len(parts) == 1 and not problems:
            problems.append(f"runs a shell command ({new[0][1]})")
        elif new:
            problems.append("runs " + ", ".join(_quote(part.text) for part, _ in new) + ", not approved yet")
        if parsed.has_substitution:
            problems.append("runs a command substitution")
        elif parsed.evaluates:
            problems.append("evaluates arithmetic or an array subscript, which can run commands")
        if parsed.file_writes:
            problems.append("writes to " + ", ".join(parsed.file_writes))
        if not parts and not problems:
            problems.append("runs nothing kimicode can check")
        if not problems:
            if any(not ro for ro in read_only):
                return _allow("approved")
            # Proven read-only. Where nothing may write, the sandbox holds the workspace read-only too.
            return Decision("allow", "read-only", read_only_everything=self.headless or self.stance == "plan")
        why = "; ".join(problems)
        if self.headless:
            why = why.replace("runs a shell command", "not a read-only command", 1) if why.startswith("runs a shell command") else f"{why}: not read-only"
            return Decision("deny", f"{why}; {_WITH_Y}")
        return Decision("ask", why, "", bool(new))

    def _read_only(self, parsed: Any, workspace: Path, words_checked: bool = False) -> tuple[str, list[str]]:
        from kimicode.security.readonly import Where, read_only_problems

        where = Where(workspace, self.home, self._user_home(), self.trusted, words_checked)
        return read_only_problems(parsed, where)

    def _secret_words(self, parts: Sequence[Any], workspace: Path) -> str:
        home = self._user_home()
        for part in parts:
            if self._rule("allow", "bash", words=part.words, assignments=part.assignments, patterned=True) is not None:
                continue  # a rule that names this very command opens what it reads
            literal = part.literal[1:] if part.literal else (True,) * (len(part.words) - 1)
            for word, plain in zip(part.words[1:] + tuple(r.target for r in part.redirects), (*literal, *(True,) * len(part.redirects))):
                if not plain:
                    # An expanded word keeps its source text: `"$HOME"/.ssh/id_rsa` is ~/.ssh/id_rsa all the same.
                    word = word.replace('"', "")
                if P.is_process_environment(word):  # `cat /proc/$PPID/environ`: a variable hides nothing here
                    return P.PROCESS_ENVIRONMENT
                path = P.expand_word(word, workspace, home)
                if path is not None:
                    secret = P.secret_reason(path, self.home, home)
                    if secret:
                        return secret
        return ""

    def _write_targets(
        self, parsed: Any, parts: Sequence[Any], read_only: list[bool], workspace: Path
    ) -> list[tuple[Path, bool]]:
        """What the command may write, each with whether that is certain: output redirections, the targets of
        `cp`, `tee`, `rm` ... and `git config` files are; any path a command that is not read-only names may
        be (`python x.py ~/.bashrc`)."""
        home = self._user_home()
        words: list[tuple[str, bool]] = [(w, True) for w in parsed.file_writes]
        for part, ro in zip(parts, read_only):
            words.extend((r.target, True) for r in part.redirects if r.op not in ("<", "<<", "<<<"))
            words.extend((w, True) for w in S.command_writes(part.words))
            if not ro:
                words.extend((w, False) for w in part.words[1:])
        found: list[tuple[Path, bool]] = []
        for word, certain in words:
            path = P.expand_word(word, workspace, home) if not os.path.isabs(word) else Path(os.path.normpath(word))
            if path is None and word in P.PROTECTED_FILES:
                path = workspace / word
            if path is not None:
                found.append((path, certain))
        return found

    def _exact_rule(self, part: Any) -> bool:
        """An allow rule that spells out this simple command as written, redirections included
        (`bash(tee -a ~/.bash_aliases < aliases.txt)`): the only kind that opens a guarded place."""
        text = " ".join(part.text.split())
        return any(
            rule.kind == "allow" and rule.names("bash") and rule.pattern is not None and " ".join(rule.pattern.split()) == text
            for rule in self.rules
        )

    def _sandboxed(self) -> bool:
        return self.sandbox is not None and getattr(self.sandbox, "mode", "off") != "off"

    # -- rules ---------------------------------------------------------------------------------------

    def _rule(
        self,
        kind: str,
        name: str,
        *,
        words: tuple[str, ...] | None = None,
        assignments: tuple[str, ...] = (),
        paths: list[Path] | None = None,
        url: str | None = None,
        workspace: Path | None = None,
        patterned: bool = False,
    ) -> Rule | None:
        for rule in self.rules:
            if rule.kind != kind or not rule.names(name):
                continue
            if rule.pattern is None:
                if not patterned:
                    return rule
                continue
            # An allow rule's `*` never stands for an option that loads other code (codeflags.py).
            if words is not None and command_matches(rule.pattern, words, assignments, strict=kind == "allow"):
                return rule
            if paths is not None and path_matches(rule.pattern, paths, workspace or Path.cwd()):
                return rule
            if url is not None and url_matches(rule.pattern, url):
                return rule
        return None

    def _user_home(self) -> Path:
        return self.user_home or P.user_home()

    # -- remembering answers -------------------------------------------------------------------------

    def rule_texts(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> list[str]:
        """The allow rules an approval of this call stands for (what "a" and "always" record)."""
        name = tool.name
        if name == "bash":
            from kimicode.security.codeflags import loading_pairs
            from kimicode.security.prefix import command_prefix
            from kimicode.security.shell import parse_command

            texts: list[str] = []
            parsed = parse_command(str(args.get("command") or ""))
            for part, why in zip(parsed.commands, self._read_only(parsed, ctx.workspace)[1]):
                if not why:
                    continue
                prefix = command_prefix(part)
                if prefix and self._rule("allow", "bash", words=part.words, assignments=part.assignments) is None:
                    # Allow rules match leading assignments only where spelled out (rules.command_matches).
                    text = f"bash({_escape_glob(' '.join((*part.assignments, prefix)))} *)"
                    if loading_pairs(part.words, part.assignments):
                        # It loads other code (`pytest -p xdist`): the answer covers this very command only.
                        text = f"bash({_escape_glob(' '.join((*part.assignments, *part.words)))})"
                    if text not in texts:
                        texts.append(text)
            return texts
        if name in ("screenshot", "fetch"):
            target = str(args.get("target" if name == "screenshot" else "url") or "")
            parts = urlsplit(target)
            if parts.scheme in ("http", "https") and parts.netloc:
                return [f"{name}({parts.scheme}://{_escape_glob(parts.netloc)}/*)"]
            return []
        if isinstance(args.get("path"), str) and not name.startswith("mcp__"):
            try:
                target = ctx.resolve(args["path"])
            except ToolError:
                return []
            if tool.read_only:  # a read outside the workspace: its folder
                folder = target if target.is_dir() else target.parent
                return [f"{name}({folder}/**)"]  # path globs have no escapes; a folder with * is rare
            if name in EDIT_TOOLS and P.is_inside_workspace(target, ctx.workspace):
                # One answer for editing this project: createfile, strreplace and insert alike (the rule
                # covers the workspace only; guarded and protected paths ask whatever it says).
                return ["edit"]
            return [name]
        return [name]

    def remember(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> None:
        """A "yes for this session" answer: the same kind of call runs unasked until the session ends."""
        for text in self.rule_texts(tool, args, ctx):
            self._add(text, SESSION_SOURCE)

    def keep_rule(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> str:
        """An "always" answer: saved as allow rules for this project (and applied now); returns them."""
        from kimicode.security.trust import TrustStore

        texts = self.rule_texts(tool, args, ctx)
        store = TrustStore(self.home)
        workspace = self.workspace or ctx.workspace
        for text in texts:
            store.add_rule(workspace, text)
            self._add(text, SAVED_SOURCE)
        return ", ".join(texts)

    def _add(self, text: str, source: str) -> None:
        rule = parse_rule(text, "allow", source)
        if rule not in self.rules:
            self.rules.append(rule)

    def listing(self) -> list[Rule]:
        """Every rule in force, in the order they were added (config first, this session's answers last)."""
        return list(self.rules)


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f"`{text[:80]}{'…' if len(text) > 80 else ''}`"


def _escape_glob(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _shown(path: Path) -> str:
    home = str(P.user_home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + os.sep) else text

