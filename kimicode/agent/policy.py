"""Which tool calls need the user's approval, and what the user has already approved for this session."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.tools.base import Tool, ToolContext


@dataclass
class ApprovalDecision:
    approved: bool
    feedback: str = ""  # a rejection's reason, passed on to the model
    remember: bool = False  # approve the same kind of call for the rest of the session


def _outside_workspace(ctx: ToolContext, args: dict[str, Any]) -> bool:
    path = args.get("path")
    if not isinstance(path, str) or not path.strip():
        return False
    try:
        target = ctx.resolve(path)
    except Exception:
        return False
    workspace = ctx.workspace.resolve()
    return not (target == workspace or workspace in Path(target).resolve().parents)


def command_prefix(command: str) -> str:
    """The part of a shell command an "approve for this session" covers: the program and its subcommand."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words:
        return ""
    if len(words) > 1 and not words[1].startswith("-") and "/" not in words[1] and "=" not in words[1]:
        return f"{words[0]} {words[1]}"
    return words[0]


@dataclass
class ApprovalPolicy:
    yolo: bool = False
    _tools: set[str] = field(default_factory=set)
    _bash_prefixes: set[str] = field(default_factory=set)

    def reason(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> str | None:
        """Why this call needs approval, or None when it may run now."""
        if self.yolo:
            return None
        if _outside_workspace(ctx, args) and not tool.read_only:
            return "writes outside the workspace"
        if tool.read_only:
            return None
        if tool.name == "bash":
            prefix = command_prefix(str(args.get("command", "")))
            return None if prefix and prefix in self._bash_prefixes else "runs a shell command"
        if tool.name in self._tools:
            return None
        return "changes files" if "path" in args else "has side effects"

    def remember(self, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> None:
        if _outside_workspace(ctx, args):
            return  # each write outside the workspace is asked for again
        if tool.name == "bash":
            prefix = command_prefix(str(args.get("command", "")))
            if prefix:
                self._bash_prefixes.add(prefix)
        else:
            self._tools.add(tool.name)
