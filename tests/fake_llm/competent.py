"""A responder that answers the way a capable model would, for checks that send many different requests
(``kimicode verify-endpoint``): it calls the tool it is asked to call with the arguments the prompt
gives, under ids of Kimi's form (``functions.NAME:IDX``), and answers from a tool result only when the
result's id is one of the calls it made (else: "I cannot find the result of my tool call"); it thinks
when thinking is switched on, sees the colour of an image, finds a word in a long text and stops at the
max-tokens bound. Flags turn it into the broken servers the checks must catch (and
``FakeLLM(renames_tool_call_ids=True)`` puts a proxy in front of it that renames the ids).

    server.responder = CompetentModel(drop_reasoning=True)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.fake_llm.recorded import RecordedRequest
from tests.fake_llm.script import Fault, Reply, ToolCall

STORY = "Once upon a time a dragon wanted to bake bread. " * 60
# What a model says when it is handed a tool result it cannot match to any call it made.
UNMATCHED_RESULT = "I cannot find the result of my tool call."


def kimi_tool_call_id(name: str, index: int) -> str:
    """The id a Kimi model gives its tool call: the function's name and the call's index in the
    conversation (counted over every call so far)."""
    return f"functions.{name}:{index}"


def unmatched_results(messages: list[dict[str, Any]]) -> list[str]:
    """The ids of the trailing tool results that answer no call the model made, as a model matches them:
    by the ids it produced itself (``kimi_tool_call_id``) on the assistant turn just before them."""
    end = len(messages)
    while end and messages[end - 1].get("role") == "tool":
        end -= 1
    results = messages[end:]
    turn = messages[end - 1] if end else {}
    earlier = sum(len(m.get("tool_calls") or []) for m in messages[: end - 1] if m.get("role") == "assistant")
    own = {
        kimi_tool_call_id(str((call.get("function") or {}).get("name")), earlier + number)
        for number, call in enumerate(turn.get("tool_calls") or [])
        if turn.get("role") == "assistant"
    }
    called = {call.get("id") for call in turn.get("tool_calls") or []} & own
    return [str(m.get("tool_call_id")) for m in results if m.get("tool_call_id") not in called]


def thinking_requested(body: dict[str, Any]) -> bool:
    """Thinking on, as Moonshot (``thinking.type``) or vLLM/SGLang (``chat_template_kwargs``) switch it."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        return thinking.get("type") == "enabled"
    kwargs = body.get("chat_template_kwargs")
    return isinstance(kwargs, dict) and kwargs.get("thinking") is True


@dataclass
class CompetentModel:
    drop_reasoning: bool = False  # never streams reasoning_content, thinking on or not
    rewrite_tool_call_ids: bool = False  # relabels every streamed piece of a tool call
    ignore_max_completion_tokens: bool = False  # as llama-cpp-python: only max_tokens bounds a reply
    drop_system: bool = False  # as a chat template that leaves system messages out (llama-cpp-python's gemma)

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        messages = request.messages
        last = messages[-1] if messages else {}
        system = "" if self.drop_system else " ".join(
            m["content"] for m in messages if m.get("role") == "system" and isinstance(m.get("content"), str)
        )
        reply = self._answer(body, last, request.last_user_text(), system, messages)
        if thinking_requested(body) and not self.drop_reasoning:
            reply.reasoning = "The user asks something simple; I answer it directly and briefly."
        if self.rewrite_tool_call_ids and reply.tool_calls:
            reply.fault = Fault.rewritten_tool_call_ids()
        self._bound(reply, body)
        return reply

    @staticmethod
    def _use_results(messages: list[dict[str, Any]]) -> Reply:
        """An answer built from the tool results, when each answers a call the model made."""
        if unmatched_results(messages):
            return Reply(content=UNMATCHED_RESULT)
        result = messages[-1].get("content")
        try:
            weather = json.loads(result) if isinstance(result, str) else None
        except ValueError:
            weather = None
        if isinstance(weather, dict) and "temp_c" in weather:
            return Reply(content=f"It is {weather['temp_c']} °C and {weather.get('sky', 'fair')}.")
        return Reply(content=f"The tool said: {str(result)[:200]}")

    def _answer(self, body: dict[str, Any], last: dict[str, Any], text: str, system: str, messages: list[dict[str, Any]]) -> Reply:
        tools = [t["function"]["name"] for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t]
        if last.get("role") == "tool":
            return self._use_results(messages)
        asked = [name for name in tools if name in text]  # a tool is called when the prompt names it
        if asked and last.get("role") == "user":
            arguments = [json.loads(found) for found in re.findall(r"\{[^{}]*\}", text)]
            if not arguments:
                city = re.search(r"weather in (\w+)", text)
                arguments = [{"city": city.group(1) if city else "Paris"}]
            made = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
            return Reply(
                tool_calls=[
                    ToolCall(asked[0], args, id=kimi_tool_call_id(asked[0], made + number))
                    for number, args in enumerate(arguments)
                ]
            )
        content = last.get("content")
        if isinstance(content, list) and any(part.get("type") == "image_url" for part in content):
            return Reply(content="Red.")
        code = re.search(r"The code word is (\w+)", system)
        if code and "code word" in text:
            return Reply(content=code.group(1))
        secret = re.search(r"The secret word is (\w+)", text)
        if secret:
            return Reply(content=secret.group(1))
        if "Count from 1 to 10" in text:
            return Reply(content=" ".join(str(n) for n in range(1, 11)))
        if "story" in text:
            return Reply(content=STORY)
        return Reply(content="OK.")

    def _bound(self, reply: Reply, body: dict[str, Any]) -> None:
        """Cut the reply at the bound the request asked for (about four characters a token)."""
        limit = body.get("max_tokens")
        if limit is None and not self.ignore_max_completion_tokens:
            limit = body.get("max_completion_tokens")
        if isinstance(limit, int) and len(reply.content) > limit * 4:
            reply.content = reply.content[: limit * 4]
            reply.finish_reason = "length"

