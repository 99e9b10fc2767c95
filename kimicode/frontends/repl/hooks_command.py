"""``/hooks``: every hook this session fires, with its event, matcher and where it was configured, and the
configuration problems that left some out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SlashCommand

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl


async def _hooks(repl: ReplControl, arg: str) -> None:
    from kimicode.extensions.hooks_config import describe

    hooks = repl.runtime.hooks
    if hooks is None or not len(hooks) and not hooks.problems:
        where = "" if repl.config.trusted else " (this folder is not trusted: its own hooks are not loaded)"
        repl.renderer.dim(f"no hooks: [[hooks.EVENT]] in config.toml or a .claude/settings.json adds them{where}")
        return
    for spec in hooks.specs:
        shown = describe(spec)
        repl.renderer.listing(f"  {shown['event']:<17} {shown['matcher']:<16} {shown['command'][:60]}  [{shown['source']}]")
    for problem in hooks.problems:
        repl.renderer.warn(f"  {problem}")


COMMAND = SlashCommand("hooks", "the hooks that run: event, matcher, command and where each is set", _hooks, while_running=True)
