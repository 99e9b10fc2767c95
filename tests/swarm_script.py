"""Helpers for swarm tests: tell the orchestrator's requests from sub-agents' and find a sub-agent's task."""

from __future__ import annotations

import re

from kimicode.agent.swarm_report import SUB_AGENT_PROMPT
from tests.fake_llm import RecordedRequest

SUB_MARKER = SUB_AGENT_PROMPT.splitlines()[0]  # the heading of the sub-agents' part of the system prompt
TASK_ID = re.compile(r"TASK-(\d+)")


def is_sub_agent(request: RecordedRequest) -> bool:
    messages = request.messages
    return bool(messages) and SUB_MARKER in str(messages[0].get("content", ""))


def steps_done(request: RecordedRequest) -> int:
    """How many model turns this conversation already had: its assistant messages."""
    return sum(1 for message in request.messages if message.get("role") == "assistant")


def first_user_text(request: RecordedRequest) -> str:
    for message in request.messages:
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def task_number(request: RecordedRequest) -> int:
    match = TASK_ID.search(first_user_text(request))
    assert match, f"no TASK-n in the sub-agent's task: {first_user_text(request)!r}"
    return int(match.group(1))


def sub_requests(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if is_sub_agent(r)]


def main_requests(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if not is_sub_agent(r)]
