"""The endpoint checks about tool calls: one call, its id, parallel calls, valid arguments, and
``reasoning_content`` taken back on a tool-call turn.

Invariants:
- The checks of one battery share one instance and run in the order of llm/verify.py's plan:
  ``tool_call`` first; ``tool_call_ids`` judges the call ``tool_call`` got and the ids its stream carried.
- Every request goes through the battery's ``ask`` (kimicode's own client), so the ids and arguments
  judged are the ones a run would see.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable
from typing import Any, Protocol

from kimicode.llm.endpoint import EndpointProfile
from kimicode.llm.messages import assistant_message, tool_messages, user_message
from kimicode.llm.reply import ChunkCallback, Reply
from kimicode.llm.verify_material import (
    CITIES,
    KIMI_TOOL_CALL_ID,
    RESULT_TEMPERATURES,
    THINKING_TOKENS,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    WEATHER_TOOL,
    CheckFailed,
    is_kimi,
    valid_weather_args,
    weather_call,
)


class Ask(Protocol):
    """The battery's way to ask the model (llm/verify.py: ``Battery.ask``)."""

    def __call__(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = ...,
        thinking: bool = ...,
        max_tokens: int = ...,
        on_chunk: ChunkCallback | None = ...,
    ) -> Awaitable[Reply]: ...


class ToolCallChecks:
    def __init__(self, ask: Ask, model: str, endpoint: EndpointProfile, calls: int) -> None:
        self.ask = ask
        self.model = model
        self.endpoint = endpoint
        self.calls = calls  # how many calls tool_call_json asks for
        self._tool_reply: Reply | None = None  # the plain tool call, for the checks that build on it
        self._chunk_ids: dict[int, list[str]] = {}

    def _record_ids(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            for part in (choice.get("delta") or {}).get("tool_calls") or []:
                if part.get("id"):
                    self._chunk_ids.setdefault(int(part.get("index", 0)), []).append(str(part["id"]))

    async def tool_call(self) -> str:
        self._chunk_ids.clear()
        self._tool_reply = await self.ask(
            [user_message(WEATHER_QUESTION)],
            tools=[WEATHER_TOOL],
            on_chunk=self._record_ids,
        )
        args = weather_call(self._tool_reply)
        reason = self._tool_reply.finish_reason
        tail = "" if reason == "tool_calls" else f" (finish_reason {reason!r}, not 'tool_calls')"
        return f"get_weather({json.dumps(args, ensure_ascii=False)}){tail}"

    async def tool_call_ids(self) -> str:
        reply = self._tool_reply
        if reply is None or not reply.tool_calls:
            raise CheckFailed("no tool call to check (see tool_call)")
        ids = [call.id for call in reply.tool_calls]
        for index, seen in sorted(self._chunk_ids.items()):
            if len(set(seen)) > 1:
                raise CheckFailed(f"the id of tool call {index} changed mid-stream ({' → '.join(dict.fromkeys(seen))})")
        if not self._chunk_ids:
            raise CheckFailed("the stream carried no tool-call id (kimicode had to make one up)")
        if len(set(ids)) != len(ids):
            raise CheckFailed(f"tool-call ids are not unique: {ids}")
        call = reply.tool_calls[0]
        problems = []
        if is_kimi(self.model):
            form = KIMI_TOOL_CALL_ID.format
            foreign = [c.id for c in reply.tool_calls if not re.fullmatch(form(name=re.escape(c.name)), c.id)]
            if foreign:
                problems.append(
                    f"id {foreign[0]!r} is not of the form functions.{call.name}:IDX the model is trained on "
                    "(something between kimicode and the model renames tool-call ids)"
                )
        temperature = secrets.choice(RESULT_TEMPERATURES)
        result = json.dumps({"temp_c": temperature, "sky": "clear"})
        history = [
            user_message(WEATHER_QUESTION),
            assistant_message(reply.content, [c.wire() for c in reply.tool_calls], reply.reasoning),
            *[m for c in reply.tool_calls for m in tool_messages(c.id, result)],
        ]
        answer = await self.ask(history, tools=[WEATHER_TOOL])
        said = " ".join(answer.content.split())
        if not re.search(rf"(?<![\d.]){temperature}(?!\d)", said):
            problems.append(
                f"the answer does not use the tool result (it holds {temperature} °C; the model said {said[:80]!r}): "
                "the result did not reach the model as the answer to its call (a proxy that renames tool-call ids?)"
            )
        if problems:
            raise CheckFailed("; ".join(problems))
        return f"id {call.id!r} stable in the stream, sent back verbatim; the answer used the result ({temperature} °C)"

    async def parallel_tool_calls(self) -> str:
        reply = await self.ask(
            [
                user_message(
                    "Get the current weather in Paris and in Tokyo. Call get_weather twice in this one reply, "
                    'once with {"city": "Paris"} and once with {"city": "Tokyo"}, before answering.'
                )
            ],
            tools=[WEATHER_TOOL],
        )
        if len(reply.tool_calls) < 2:
            raise CheckFailed(f"{len(reply.tool_calls)} tool call(s) in the reply, not 2")
        cities = [valid_weather_args(call)["city"] for call in reply.tool_calls]
        if len({call.id for call in reply.tool_calls}) != len(reply.tool_calls):
            raise CheckFailed("the parallel calls share an id")
        return f"{len(reply.tool_calls)} calls in one reply: {', '.join(map(str, cities))}"

    async def tool_call_json(self) -> str:
        valid, problems = 0, []
        for number in range(self.calls):
            city = CITIES[number % len(CITIES)]
            reply = await self.ask(
                [user_message(f"What is the weather in {city}? Use the get_weather tool.")], tools=[WEATHER_TOOL]
            )
            try:
                weather_call(reply)
                valid += 1
            except CheckFailed as failed:
                problems.append(f"{city}: {failed}")
        if valid < self.calls:
            raise CheckFailed(f"{valid}/{self.calls} calls valid; {problems[0]}")
        return f"{valid}/{self.calls} calls with arguments that are valid JSON and match the schema"

    async def reasoning_round_trip(self) -> str:
        question = user_message("What is the weather in Oslo? Think it over, then use the get_weather tool.")
        reply = await self.ask([question], tools=[WEATHER_TOOL], thinking=True, max_tokens=THINKING_TOKENS)
        if not reply.reasoning.strip():
            raise CheckFailed("thinking on, but the stream carried no reasoning_content")
        if not reply.tool_calls:
            return f"{len(reply.reasoning)} characters of reasoning_content (no tool call to send it back with)"
        history = [
            question,
            assistant_message(reply.content, [c.wire() for c in reply.tool_calls], reply.reasoning),
            *[m for c in reply.tool_calls for m in tool_messages(c.id, WEATHER_RESULT)],
        ]
        await self.ask(history, tools=[WEATHER_TOOL], thinking=True, max_tokens=THINKING_TOKENS)
        if "reasoning_content" in self.endpoint.rejected:
            raise CheckFailed("the endpoint refuses reasoning_content on assistant messages: the model loses its thinking between tool calls")
        return f"{len(reply.reasoning)} characters of reasoning_content, sent back on the tool-call turn and accepted"
