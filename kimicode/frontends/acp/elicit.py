"""An MCP server's question (elicitation) as ACP ``session/request_permission``: accept or decline.

An editor's permission dialog has buttons, not a form: a question whose fields all have defaults is asked
(accepting answers with the defaults, which the dialog shows); one that needs typed answers is declined,
and the thread says why. The question is attached to the MCP tool call it came during, once that call is
on the editor's screen; a question outside any call gets a key of its own.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from acp import RequestError
from acp import helpers as h
from acp.schema import AllowedOutcome, DeniedOutcome, PermissionOption, ToolCallUpdate

from kimicode.frontends.acp.editor import call_key
from kimicode.frontends.acp.updates import TurnUpdates
from kimicode.mcp.elicit import Answer, Question

if TYPE_CHECKING:
    from kimicode.mcp.manager import McpManager

log = logging.getLogger("kimicode.acp")
_numbers = itertools.count(1)


def send_questions_to_editor(
    mcp: McpManager | None, conn: Any, session_id: str, updates: TurnUpdates, notify: Callable[[str], None]
) -> None:
    """From now on the session's MCP servers' questions are asked in the editor."""
    if mcp is not None:
        mcp.requests.asker = partial(ask_editor, conn, session_id, updates, notify)


async def ask_editor(
    conn: Any, session_id: str, updates: TurnUpdates, notify: Callable[[str], None], question: Question
) -> Answer:
    values = question.defaults()
    said = f"MCP server '{question.server}' asked \"{question.message}\""
    if values is None:
        notify(f"{said}: declined, its answers must be typed and an editor's dialog cannot take them")
        return Answer("decline")
    if question.call[1]:
        key = call_key(*question.call)
        await updates.on_screen(key)
    else:
        key = f"mcp-question-{next(_numbers)}"
    lines = [question.message] + [f"{field.label()}: {json.dumps(values.get(field.name))}" for field in question.fields]
    if question.url:
        lines.append(f"open: {question.url}")
    tool_call = ToolCallUpdate(
        tool_call_id=key,
        title=f"MCP server '{question.server}' asks: {question.message}",
        kind="other",
        status="pending",
        content=[h.tool_content(h.text_block("\n".join(lines)))],
    )
    options = [
        PermissionOption(option_id="accept", name="Accept" if not values else "Accept these answers", kind="allow_once"),
        PermissionOption(option_id="decline", name="Decline", kind="reject_once"),
    ]
    try:
        response = await conn.request_permission(session_id=session_id, tool_call=tool_call, options=options)
    except (RequestError, ConnectionError) as exc:
        log.info("session/request_permission failed: %s", exc)
        return Answer("decline")
    outcome = response.outcome
    if isinstance(outcome, DeniedOutcome):
        return Answer("cancel")
    if isinstance(outcome, AllowedOutcome) and outcome.option_id == "accept":
        return Answer("accept", values)
    return Answer("decline")
