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

Where each part lives: the settings and what files and rules decide (judge.py), shell commands
(policy_bash.py), pages (policy_web.py), the rules in force (rulebook.py), the answer's type (decision.py).
Here: which of those a tool call goes to, and what a "yes" to it records.

Invariants:
- Every tool call gets exactly one Decision from `decide`; nothing else grants a call. A PreToolUse hook's
  answer is weighed here too (`decide(..., hook=)`): its deny beats -y, its allow never beats a deny.
- Plan mode refuses whatever is not proven to only read, before any rule or -y is consulted, and what it lets
  through as a command runs with the whole file system read-only.
- An answer ("a", "always") records allow rules only (`rule_texts`), never for what was not asked about, and
  never wider than the commands, folder or host asked about.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from kimicode.security import paths as P
from kimicode.security.decision import PLAN_RULE, Action, Decision, allow, stricter
from kimicode.security.judge import WITH_Y, Judge
from kimicode.security.policy_bash import decide_bash
from kimicode.security.policy_web import decide_fetch, decide_screenshot
from kimicode.security.rules import EDIT_TOOLS, PATH_TOOLS, Rule
from kimicode.tools.base import Tool, ToolContext, ToolError

# Decision is imported from here by the agent loop.
__all__ = ["Decision", "Policy", "SAVED_SOURCE", "SESSION_SOURCE"]

SESSION_SOURCE = "this session"
SAVED_SOURCE = "saved for this project"  # the same label config layering gives them


class Policy(Judge):
    # -- the decision --------------------------------------------------------------------------------

    def decide(self, tool: Tool, args: dict[str, Any], ctx: ToolContext, hook: Decision | None = None) -> Decision:
        """``hook``: what the PreToolUse hooks said of the call (kimicode.extensions.hooks.tool_verdict)."""
        with P.one_decision():  # each path resolved once in this decision, afresh in the next
            decision = self._decide(tool, args, ctx)
            return decision if hook is None else self._with_hook(decision, hook, tool, args, ctx)

    def _with_hook(self, decision: Decision, hook: Decision, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        """A hook's deny beats everything, -y included; its ask makes the call asked (refused headless); its
        allow stands for the user's yes to a question, never for more: a deny rule, a secret path, plan mode
        and what must be asked every time stay as they were."""
        if hook.action == Action.DENY:
            return hook
        if hook.action == Action.ASK:
            if decision.action == Action.DENY:
                return decision
            if self.headless:
                return Decision(Action.DENY, f"{hook.reason}; nobody can answer in a headless run", hook.rule, False)
            return Decision(Action.ASK, hook.reason, hook.rule, False)
        if decision.action == Action.ASK:
            return hook if decision.rememberable else decision
        if decision.action == Action.DENY and self.headless and decision.rememberable and not decision.rule:
            # Refused only because nobody can be asked: the hook answers the question an interactive run asks.
            asking = copy.copy(self)
            asking.headless = False
            again = asking._decide(tool, args, ctx)
            if again.action == Action.ASK and again.rememberable:
                return hook
        return decision

    def _decide(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        if self.stance == "plan" and not self._only_reads(tool, args, ctx):
            what = "a command that is not read-only" if tool.name == "bash" else "a change"
            return Decision(
                Action.DENY, f"plan mode: {what}; nothing changes until the user accepts a plan", PLAN_RULE, False
            )
        name = tool.name
        if name == "bash":
            decision = decide_bash(self, args, ctx.workspace)
            if self.stance == "plan" and decision.action == Action.ALLOW:
                # Plan mode let it through as read-only: yolo, trust or a rule do not make it writable.
                decision = replace(decision, read_only_everything=True)
            return decision
        if name == "screenshot":
            page = decide_screenshot(self, tool, args, ctx)
            reference = str(args.get("reference") or "").strip()
            if not reference:
                return page
            # The reference's pixels go to the model: the same decision as a `view` of that file.
            return stricter(page, self.path(tool.name, ctx.resolve(reference), ctx.workspace, write=False))
        if name == "fetch":
            return decide_fetch(self, tool, args)
        if (name in PATH_TOOLS or not name.startswith("mcp__")) and isinstance(args.get("path"), str):
            return self._path_tool(tool, args, ctx)
        return self._other(tool)

    def _only_reads(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> bool:
        """What plan mode lets through: read-only tools, and commands known to be read-only, in the sandbox."""
        if tool.name != "bash":
            return tool.read_only
        from kimicode.security.shell import parse_command

        if str(args.get("escalate") or "").strip() or args.get("background") is True:
            return False
        line, parts = self.read_only(parse_command(str(args.get("command") or "")), ctx.workspace)
        return not line and not any(parts)

    def _other(self, tool: Tool) -> Decision:
        for kind in (Action.DENY, Action.ASK, Action.ALLOW):
            rule = self.rules.find(kind, tool.name)
            if rule is not None:
                return self.by_rule(rule)
        if tool.read_only:
            return allow("read-only")
        if self.yolo:
            return allow("yolo")
        if self.headless:
            return Decision(Action.DENY, f"has side effects; {WITH_Y}")
        return Decision(Action.ASK, "has side effects")

    def _path_tool(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
        try:
            target = ctx.resolve(args["path"])
        except ToolError:
            return allow("no path to check")  # the tool itself reports the empty path
        return self.path(tool.name, target, ctx.workspace, write=not tool.read_only)

    # -- remembering answers -------------------------------------------------------------------------

    def rule_texts(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> list[str]:
        """The allow rules an approval of this call stands for (what "a" and "always" record)."""
        name = tool.name
        if name == "bash":
            return self._command_rule_texts(str(args.get("command") or ""), ctx)
        if name in ("screenshot", "fetch"):
            url = str(args.get("target" if name == "screenshot" else "url") or "")
            parts = urlsplit(url)
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

    def _command_rule_texts(self, command: str, ctx: ToolContext) -> list[str]:
        """Per simple command not read-only and not yet allowed: its prefix and anything after it."""
        from kimicode.security.codeflags import loading_pairs
        from kimicode.security.prefix import command_prefix
        from kimicode.security.shell import parse_command

        texts: list[str] = []
        parsed = parse_command(command)
        for part, why in zip(parsed.commands, self.read_only(parsed, ctx.workspace)[1], strict=True):
            if not why:
                continue
            prefix = command_prefix(part)
            if prefix and self.rules.for_command(Action.ALLOW, part) is None:
                # Allow rules match leading assignments only where spelled out (rules.command_matches).
                text = f"bash({_escape_glob(' '.join((*part.assignments, prefix)))} *)"
                if loading_pairs(part.words, part.assignments):
                    # It loads other code (`pytest -p xdist`): the answer covers this very command only.
                    text = f"bash({_escape_glob(' '.join((*part.assignments, *part.words)))})"
                if text not in texts:
                    texts.append(text)
        return texts

    def remember(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> None:
        """A "yes for this session" answer: the same kind of call runs unasked until the session ends."""
        for text in self.rule_texts(tool, args, ctx):
            self.rules.add(text, SESSION_SOURCE)

    def keep_rule(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> str:
        """An "always" answer: saved as allow rules for this project (and applied now); returns them."""
        from kimicode.security.trust import TrustStore

        texts = self.rule_texts(tool, args, ctx)
        store = TrustStore(self.home)
        workspace = self.workspace or ctx.workspace
        for text in texts:
            store.add_rule(workspace, text)
            self.rules.add(text, SAVED_SOURCE)
        return ", ".join(texts)

    def listing(self) -> list[Rule]:
        """Every rule in force, in the order they were added (config first, this session's answers last)."""
        return self.rules.listing()


def _escape_glob(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
