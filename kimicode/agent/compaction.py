"""Shrinking a live history with the model's help: the glue between the loop and agent/context.py."""

from __future__ import annotations

from kimicode.agent.context import CompactionResult, compact, estimate_tokens
from kimicode.llm.client import ChatClient
from kimicode.llm.messages import Message

# Recent history kept verbatim: a third of what there is, but never more than this share of the window,
# so the summary always replaces the older part and the result leaves room to work.
KEEP_RECENT_SHARE = 3
KEEP_RECENT_WINDOW_FRACTION = 0.15
SUMMARY_MAX_TOKENS = 4096


def keep_recent_tokens(messages: list[Message], context_window: int) -> int:
    body = messages[1:] if messages and messages[0].get("role") == "system" else messages
    return min(int(context_window * KEEP_RECENT_WINDOW_FRACTION), estimate_tokens(body) // KEEP_RECENT_SHARE)


async def compact_history(
    client: ChatClient, messages: list[Message], session_id: str = "", instruction: str = ""
) -> CompactionResult:
    """Summarise the older part of ``messages`` with the model (no tools, no thinking); ``instruction`` is
    what the user wants the summary to keep."""

    async def summarize(request: list[Message]) -> str:
        reply = await client.complete(
            request, [], thinking=False, max_tokens=SUMMARY_MAX_TOKENS, session_id=session_id
        )
        return reply.content

    keep = keep_recent_tokens(messages, client.profile.context_window)
    return await compact(messages, summarize, keep, instruction)
