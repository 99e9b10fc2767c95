"""The core's events as stream-json objects (DESIGN.md B.5): what `--output-format stream-json` prints a line
each of, and what `kimicode serve` sends as server-sent events.

Invariants:
- Pure conversion: objects are returned, never written; redacting them is the writer's job (each writer
  has one filter for everything it sends).
- A step's text and thinking are held until its ``Usage``: that is when the reply is complete, and it goes
  out whole as one ``assistant`` object.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kimicode import __version__
from kimicode.agent import events as ev
from kimicode.config import Config
from kimicode.llm.prices import shown_cost


def init_object(
    config: Config, session_id: str, tools: list[str], extensions: dict[str, int] | None = None
) -> dict[str, Any]:
    """``extensions``: how many hooks, commands, agents and plugins were found (kimicode.extensions.summary)."""
    return {
        "type": "system",
        "subtype": "init",
        "session_id": session_id,
        "model": config.model,
        "mode": config.mode,
        "cwd": str(config.work_dir),
        "tools": tools,
        "version": __version__,
        "extensions": extensions or {},
    }


def result_object(result: ev.RunResult, config: Config, session_id: str) -> dict[str, Any]:
    usage = dict(result.usage)
    if "cost_usd" in usage:  # null where the endpoint's prices are not known (kimicode/llm/prices.py)
        usage["cost_usd"] = shown_cost(config, float(usage["cost_usd"] or 0.0))
    return {
        "type": "result",
        "subtype": "error" if result.subtype == "interrupted" else result.subtype,
        "is_error": result.is_error,
        "result": result.result,
        "submitted": result.submitted,
        "session_id": session_id,
        "num_steps": result.num_steps,
        "usage": usage,
        "duration_ms": result.duration_ms,
        "model": config.model,
        "mode": config.mode,
        **result.extra,
    }


class StreamJson:
    """One run's events, converted one at a time (``convert``); each event type has its own small method
    (``_on_<Type>``), and a type with none yields nothing."""

    def __init__(self, config: Config) -> None:
        self._config = config  # costs are shown where its endpoint's prices are known
        self._text: dict[str, str] = {}
        self._thinking: dict[str, str] = {}

    def convert(self, event: ev.Event) -> list[dict[str, Any]]:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        return handler(event) if handler is not None else []

    def _on_TextDelta(self, event: ev.TextDelta) -> list[dict[str, Any]]:
        self._text[event.agent] = self._text.get(event.agent, "") + event.text
        return []

    def _on_ThinkingDelta(self, event: ev.ThinkingDelta) -> list[dict[str, Any]]:
        self._thinking[event.agent] = self._thinking.get(event.agent, "") + event.text
        return []

    def _on_Usage(self, event: ev.Usage) -> list[dict[str, Any]]:
        text, thinking = self._text.pop(event.agent, ""), self._thinking.pop(event.agent, "")
        objects: list[dict[str, Any]] = []
        if text or thinking:
            message: dict[str, Any] = {"type": "assistant", "text": text, "agent": event.agent}
            if thinking:
                message["thinking"] = thinking
            objects.append(message)
        figures = asdict(event)
        figures["cost"] = shown_cost(self._config, event.cost)
        figures["total_cost"] = shown_cost(self._config, event.total_cost)
        objects.append({"type": "usage", **figures})
        return objects

    def _on_ToolCallStart(self, event: ev.ToolCallStart) -> list[dict[str, Any]]:
        return [{"type": "tool_use", "id": event.call_id, "name": event.name, "input": event.args, "agent": event.agent}]

    def _on_ToolProgress(self, event: ev.ToolProgress) -> list[dict[str, Any]]:
        line: dict[str, Any] = {"type": "progress", "tool_call_id": event.call_id, "progress": event.progress}
        if event.total is not None:
            line["total"] = event.total
        if event.message:
            line["message"] = event.message
        return [{**line, "agent": event.agent}]

    def _on_ToolCallEnd(self, event: ev.ToolCallEnd) -> list[dict[str, Any]]:
        result = event.result
        return [{
            "type": "tool_result",
            "id": event.call_id,
            "name": event.name,
            "is_error": result.is_error,
            "content": result.text,
            "images": [image.describe() for image in result.images],
            "agent": event.agent,
        }]

    def _on_Refused(self, event: ev.Refused) -> list[dict[str, Any]]:
        return [{"type": "refused", **asdict(event)}]

    def _on_ApprovalRequest(self, event: ev.ApprovalRequest) -> list[dict[str, Any]]:
        return [{"type": "approval_request", **asdict(event)}]

    def _on_Error(self, event: ev.Error) -> list[dict[str, Any]]:
        return [{"type": "error", "message": event.message, "retrying": event.retrying, "agent": event.agent}]

    def _on_SubAgentUpdate(self, event: ev.SubAgentUpdate) -> list[dict[str, Any]]:
        return [{"type": "subagent", **asdict(event)}]

    def _on_Compacted(self, event: ev.Compacted) -> list[dict[str, Any]]:
        return [{"type": "compacted", **asdict(event)}]

    def _on_Steered(self, event: ev.Steered) -> list[dict[str, Any]]:
        return [{"type": "user", "content": event.text, "agent": event.agent}]

    def _on_TodoUpdate(self, event: ev.TodoUpdate) -> list[dict[str, Any]]:
        return [{"type": "todo", "items": event.items, "agent": event.agent}]

    def _on_TaskUpdate(self, event: ev.TaskUpdate) -> list[dict[str, Any]]:
        return [{"type": "task", **asdict(event)}]
