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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from kimicode.security import paths as P
from kimicode.security.rules import (
    PATH_TOOLS,
    Rule,
    command_matches,
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


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # one line: why (names the rule or the path class)
    rule: str = ""  # the rule that decided, with its source
    rememberable: bool = True  # False: a session ("a") or "always" answer must not cover it

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

    # -- the decision --------------------------------------------------------------------------------

    def decide(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        if self.stance == "plan" and not self._only_reads(tool, args):
            what = "a command that is not read-only" if tool.name == "bash" else "a change"
            return Decision("deny", f"plan mode: {what}; nothing changes until the user accepts a plan", PLAN_RULE, False)
        name = tool.name
        if name == "bash":
            return self._bash(tool, args, ctx)
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

    def _only_reads(self, tool: Tool, args: dict[str, Any]) -> bool:
        """What plan mode lets through: read-only tools, and commands known to be read-only, in the sandbox."""
        if tool.name != "bash":
            return tool.read_only
        from kimicode.security.shell import is_read_only, parse_command

        if str(args.get("escalate") or "").strip() or args.get("background") is True:
            return False
        return is_read_only(parse_command(str(args.get("command") or "")))

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
        inside = P.is_inside_workspace(target, workspace)
        if write:
            protected = P.protected_reason(target, workspace, self._user_home())
            if protected:
                return self._protected(protected, explicit)
            if explicit is not None:
                return _allow(f"allowed by {explicit.describe()}", explicit)
            if inside:
                rule = self._rule("allow", name, paths=forms, workspace=workspace)
                if rule is not None:
                    return _allow(f"allowed by {rule.describe()}", rule)
                if self.stance == "auto-edit":
                    return _allow("auto-edit: a file edit inside the workspace")
            if self.yolo:
                return _allow("yolo")
            why = "changes files" if inside else "writes outside the workspace"
            if self.headless:
                return Decision("deny", f"{why}; {_WITH_Y}")
            return Decision("ask", why, "", inside)
        if inside or any(P.inside(f, d) for f in forms for d in self.skill_dirs):
            return _allow("read inside the workspace")
        if explicit is not None:
            return _allow(f"allowed by {explicit.describe()}", explicit)
        if self.yolo:
            return _allow("yolo")
        if self.headless:
            return Decision("deny", f"reads outside the workspace; {_WITH_Y}")
        return Decision("ask", "reads outside the workspace")

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
        from kimicode.security.shell import ParsedCommand, inner_commands, is_read_only, parse_command

        command = str(args.get("command") or "")
        escalate = str(args.get("escalate") or "").strip()
        parsed = parse_command(command)
        parts = parsed.commands
        workspace = ctx.workspace
        # Deny and ask rules also see what a wrapper runs: `sudo rm x`, `find . -exec rm {} +`, `xargs rm`.
        runs = [argv for part in parts for argv in (part.words, *inner_commands(part))]
        for argv in runs:
            rule = self._rule("deny", "bash", words=argv)
            if rule is not None:
                return self._by_rule(rule)
        secret = self._secret_words(parts, workspace)
        if secret:
            return Decision("deny", f"names {secret}; only an allow rule for the command opens it", "", False)
        for argv in runs:
            rule = self._rule("ask", "bash", words=argv)
            if rule is not None:
                return self._by_rule(rule)
        read_only = [is_read_only(ParsedCommand(part.text, (part,), False, (), False, "")) for part in parts]
        protected = self._protected_writes(parsed, parts, read_only, workspace)
        if protected and not (self.yolo and self.trusted):
            why = f"writes {protected}"
            if escalate:
                why += f"; asks to run outside the sandbox: {escalate}"
            if self.headless:
                return Decision("deny", f"{why}; only a trusted folder with -y allows it", "", False)
            return Decision("ask", why, "", False)
        if escalate:
            if self.yolo:
                return _allow("yolo approves leaving the sandbox")
            if self.headless:
                return Decision("deny", f"asks to run outside the sandbox ({escalate}); {_WITH_Y}", "", False)
            return Decision("ask", f"asks to run outside the sandbox: {escalate}", "", False)
        if self._sandboxed() and self.trusted:
            return _allow("contained by the sandbox")
        if self.yolo:
            return _allow("yolo")
        new = [part for part, ro in zip(parts, read_only) if not ro and self._rule("allow", "bash", words=part.words) is None]
        problems: list[str] = []
        if parsed.error:
            problems.append(f"cannot be parsed ({parsed.error})")
        elif parsed.opaque:
            problems.append("uses shell constructs kimicode does not analyse")
        if new and len(parts) == 1 and not problems:
            problems.append("runs a shell command")
        elif new:
            problems.append("runs " + ", ".join(_quote(part.text) for part in new) + ", not approved yet")
        if parsed.has_substitution:
            problems.append("runs a command substitution")
        if parsed.file_writes:
            problems.append("writes to " + ", ".join(parsed.file_writes))
        if not problems:
            return _allow("read-only or approved")
        why = "; ".join(problems)
        if self.headless:
            why = "not a read-only command" if why == "runs a shell command" else f"{why}: not read-only"
            return Decision("deny", f"{why}; {_WITH_Y}")
        return Decision("ask", why, "", bool(new))

    def _secret_words(self, parts: Sequence[Any], workspace: Path) -> str:
        home = self._user_home()
        for part in parts:
            if self._rule("allow", "bash", words=part.words, patterned=True) is not None:
                continue  # a rule that names this very command opens what it reads
            for word in part.words[1:] + tuple(r.target for r in part.redirects):
                if P.is_process_environment(word):  # `cat /proc/$PPID/environ`: a variable hides nothing here
                    return P.PROCESS_ENVIRONMENT
                path = P.expand_word(word, workspace, home)
                if path is not None:
                    secret = P.secret_reason(path, self.home, home)
                    if secret:
                        return secret
        return ""

    def _protected_writes(self, parsed: Any, parts: Sequence[Any], read_only: list[bool], workspace: Path) -> str:
        """A protected path the command writes: a redirection into one, or one named by a command that writes."""
        home = self._user_home()
        words: list[str] = list(parsed.file_writes)
        for part, ro in zip(parts, read_only):
            words.extend(r.target for r in part.redirects if r.op not in ("<", "<<", "<<<"))
            if not ro:
                words.extend(part.words[1:])
        for word in words:
            path = P.expand_word(word, workspace, home) if not os.path.isabs(word) else Path(os.path.normpath(word))
            if path is None and word in P.PROTECTED_FILES:
                path = workspace / word
            if path is not None:
                reason = P.protected_reason(path, workspace, home)
                if reason:
                    return reason
        return ""

    def _sandboxed(self) -> bool:
        return self.sandbox is not None and getattr(self.sandbox, "mode", "off") != "off"

    # -- rules ---------------------------------------------------------------------------------------

    def _rule(
        self,
        kind: str,
        name: str,
        *,
        words: tuple[str, ...] | None = None,
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
            if words is not None and command_matches(rule.pattern, words):
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
            from kimicode.security.shell import ParsedCommand, command_prefix, is_read_only, parse_command

            texts: list[str] = []
            for part in parse_command(str(args.get("command") or "")).commands:
                if is_read_only(ParsedCommand(part.text, (part,), False, (), False, "")):
                    continue
                prefix = command_prefix(part)
                if prefix and self._rule("allow", "bash", words=part.words) is None:
                    text = f"bash({_escape_glob(prefix)} *)"
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
