"""``/context``: what fills the context window, part by part, against the window, and what compaction would
keep (kimicode.agent.context_parts, whose total is the loop's own estimate); and the notice given once the
context crosses CONTEXT_NOTICE_SHARE of the window, before automatic compaction summarises it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.agent import events as ev
from kimicode.agent.context import CONTEXT_NOTICE_SHARE
from kimicode.frontends.repl.commands import SlashCommand

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl

BAR_CELLS = 30


def _percent(tokens: int, window: int) -> str:
    return f"{100 * tokens / window:.1f}%" if window else "?"


async def context_command(repl: ReplControl, arg: str) -> None:
    from kimicode.agent.context_parts import context_parts
    from kimicode.agent.skill_catalog import skills_section

    skills = repl.runtime.skills
    parts = context_parts(repl.agent, repl.config.work_dir, skills_section(skills) if skills is not None else "")
    window = parts.window
    filled = min(BAR_CELLS, round(BAR_CELLS * parts.total / window)) if window else 0
    bar = "█" * filled + "·" * (BAR_CELLS - filled)
    repl.renderer.info(f"  context {bar} {parts.total:,} of {window:,} tokens ({_percent(parts.total, window)})")
    width = max(len(name) for name, _tokens in [*parts.parts, *parts.outside])
    for name, tokens in parts.parts:
        repl.renderer.listing(f"    {name:<{width}}  {tokens:>9,}  {_percent(tokens, window):>6}")
    repl.renderer.listing(f"    {'total':<{width}}  {parts.total:>9,}  {_percent(parts.total, window):>6}", "bold")
    if parts.measured:
        repl.renderer.dim("    (the total is the endpoint's last count plus what was added since; parts are shares of it)")
    for name, tokens in parts.outside:
        if tokens:
            repl.renderer.dim(f"    + {name} ~{tokens:,} sent with each request, counted once the endpoint reports")
    threshold = repl.agent.compact_threshold
    repl.renderer.dim(
        f"  compaction (automatic at {threshold:.0%}) would summarise {_messages(parts.compactable_messages)} and keep"
        f" the last {_messages(parts.kept_messages)} verbatim; /compact [what to keep] does it now"
    )


def _messages(count: int) -> str:
    return f"{count} message{'s' if count != 1 else ''}"


class ContextWatch:
    """Says once, when the main agent's context crosses CONTEXT_NOTICE_SHARE of the window, that compaction
    is near; again only after it fell back below (a compaction, a new session)."""

    def __init__(self) -> None:
        self._above = False

    def notice(self, event: object) -> str | None:
        if not isinstance(event, ev.Usage) or event.agent or not event.context_window:
            return None
        share = event.context_tokens / event.context_window
        was_above, self._above = self._above, share >= CONTEXT_NOTICE_SHARE
        if not self._above or was_above:
            return None
        return (
            f"context is {share:.0%} full: older history will be summarised soon. To choose what is kept, "
            "/compact now with a focus, e.g. /compact keep the API design decisions and failing tests"
        )


COMMAND = SlashCommand(
    "context", "show what fills the context window, part by part, and what compaction would keep", context_command,
    while_running=True,
)
