"""The request bytes made from what earlier requests encoded (llm/request_cache.py) are the bytes a fresh
encoding gives, whatever happened to the history in between: messages added, changed in place (text, key
order, a value's type, a nested list), replaced by equal or shorter ones (folding, compaction), images and
reasoning dropped for an endpoint, several conversations taking turns, histories past a pickle batch."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import kimicode.llm.request_cache as request_cache
from kimicode.config import Config
from kimicode.llm.endpoint import EndpointProfile
from kimicode.llm.messages import Image, assistant_message, tool_messages, user_message
from kimicode.llm.profiles import profile_for
from kimicode.llm.request import build_body, encode
from kimicode.llm.request_cache import KEPT_CONVERSATIONS, RequestEncoder

TOOLS = [{"type": "function", "function": {"name": "bash", "description": "run a command", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "integer", "minimum": 1}}}}}]


def history(steps: int, tag: str = "") -> list[dict[str, Any]]:
    messages = [{"role": "system", "content": f"you are a coding agent — héllo {tag}"}, user_message("do it")]
    for step in range(steps):
        call = {"id": f"call_{step}", "type": "function",
                "function": {"name": "bash", "arguments": f'{{"command": "echo {step}"}}'}}
        messages.append(assistant_message("", [call], reasoning=f"thinking {step}"))
        messages.extend(tool_messages(f"call_{step}", f"{step}\n[exit code: 0] ✓"))
    return messages


def started() -> RequestEncoder:
    """An encoder past its first request (which it encodes as it is, without keeping anything)."""
    encoder = RequestEncoder()
    encoder.encode(body_of([user_message("first")]))
    return encoder


def body_of(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"model": "m", "stream": True, "tools": TOOLS if tools is None else tools, "messages": messages,
            "max_tokens": 100, "prompt_cache_key": "s1"}


class Counting:
    """Counts the messages the encoder encodes one by one or as a whole list."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.values: list[Any] = []
        real = request_cache.to_json

        def counted(value: Any) -> str:
            self.values.append(value)
            return real(value)

        monkeypatch.setattr(request_cache, "to_json", counted)

    def messages_encoded(self) -> int:
        count = 0
        for value in self.values:
            if isinstance(value, list) and value and isinstance(value[0], dict) and "role" in value[0]:
                count += len(value)
            elif isinstance(value, dict) and "role" in value:
                count += 1
        self.values.clear()
        return count


def test_a_growing_history_encodes_only_its_new_messages_and_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = Counting(monkeypatch)
    encoder = RequestEncoder()
    messages = history(30)
    for end in range(4, len(messages) + 1, 2):
        body = body_of(messages[:end])
        assert encoder.encode(body) == encode(body)
        # (the client's first request as a whole body, the second's messages as a list, then each new pair)
        assert counting.messages_encoded() == {4: 0, 6: 6}.get(end, 2)


Change = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def changed_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages[3]["content"] = "changed in place"
    return messages


def reordered_keys(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages[3]["role"] = messages[3].pop("role")  # (same keys and values, another order)
    return messages


def retyped_value(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages[5]["extra"] = 1
    return messages


def nested_call_added(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages[2]["tool_calls"].append({"id": "late", "type": "function", "function": {"name": "x", "arguments": "{}"}})
    return messages


def nested_argument_changed(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages[2]["tool_calls"][0]["function"]["arguments"] = '{"command": "rm -rf /"}'
    return messages


def folded(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*messages[:3], {**messages[3], "content": "[folded]"}, *messages[4:]]


def compacted(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [messages[0], user_message("Summary of the earlier conversation: it went well"), *messages[-2:]]


def copied(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(messages)


def shared_strings_split(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: (value + "x")[:-1] if isinstance(value, str) else value for key, value in m.items()} for m in messages]


@pytest.mark.parametrize("change", [changed_text, reordered_keys, retyped_value, nested_call_added,
                                    nested_argument_changed, folded, compacted, copied, shared_strings_split])
def test_a_history_changed_after_it_was_sent_is_sent_as_it_is_now(change: Change) -> None:
    encoder = started()
    messages = history(6)
    for end in (8, 10, 12):
        encoder.encode(body_of(messages[:end]))
    if change is retyped_value:
        encoder.encode(body_of(messages))  # (the value as an int is what was encoded before it becomes a bool)
        messages[5]["extra"] = True
    else:
        messages = change(messages)
    for more in ([], [user_message("and now?")]):
        body = body_of(messages + more)
        assert encoder.encode(body) == encode(body), change.__name__


def test_tools_changed_in_place_are_sent_as_they_are_now() -> None:
    encoder = started()
    tools = copy.deepcopy(TOOLS)
    messages = history(2)
    encoder.encode(body_of(messages, tools))
    tools[0]["function"]["parameters"]["properties"]["timeout"]["minimum"] = 1.0  # (equal to 1, but not its JSON)
    body = body_of(messages, tools)
    assert encoder.encode(body) == encode(body)
    tools[0]["function"]["description"] = "changed"
    body = body_of(messages, tools)
    assert encoder.encode(body) == encode(body)


def test_bodies_an_endpoint_gets_without_reasoning_or_images_are_those_of_a_fresh_encoding() -> None:
    config = Config(base_url="http://127.0.0.1:9/v1", model="kimi-k2.5")
    strict = EndpointProfile(config.base_url, "other")
    strict.reject("reasoning_content")
    strict.refuse_images("kimi-k2.5")
    open_endpoint = EndpointProfile(config.base_url, "other")
    picture = Image("image/png", b"\x89PNG...", 1, 1, "shot.png")
    messages = [*history(3), user_message("look", images=[picture]), *tool_messages("call_9", "seen", [picture])]
    encoder = started()
    for endpoint in (open_endpoint, strict, strict, open_endpoint, strict):
        for end in (len(messages) - 3, len(messages)):
            body = build_body(config, profile_for("kimi-k2.5"), endpoint, messages[:end], TOOLS, {"thinking": True})
            assert encoder.encode(body) == encode(body)


def test_conversations_taking_turns_on_one_client_each_get_their_own_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = started()
    counting = Counting(monkeypatch)
    agents = [history(8, tag=str(n)) for n in range(KEPT_CONVERSATIONS + 2)]
    for end in (4, 6, 8):
        for messages in agents:
            body = body_of(messages[:end])
            assert encoder.encode(body) == encode(body)
    # (more conversations than are kept: each request of the oldest is encoded whole, and still right)
    assert counting.messages_encoded() == len(agents) * (4 + 6 + 8)
    few = agents[:2]
    for end in (10, 12):
        for messages in few:
            body = body_of(messages[:end])
            assert encoder.encode(body) == encode(body)
    assert counting.messages_encoded() == 2 * 10 + 2 * 2  # (whole once each, then only the new pair)


@pytest.mark.parametrize("start", [998, 999, 1000, 1001])
def test_histories_across_a_pickle_batch_boundary_give_the_same_bytes(start: int) -> None:
    encoder = started()
    messages = [user_message(f"m{n}") for n in range(start + 4)]
    for end in range(start, start + 5):
        body = body_of(messages[:end])
        assert encoder.encode(body) == encode(body)


def test_values_pickle_cannot_take_or_keys_that_are_not_text_are_encoded_whole() -> None:
    class Local(str):  # (a class defined in a function: pickle cannot name it)
        pass

    encoder = started()
    messages = history(2)
    encoder.encode(body_of(messages))
    unpicklable = [*messages, {"role": "user", "content": Local("a local text")}]
    body = body_of(unpicklable)
    assert encoder.encode(body) == encode(body)
    odd: dict[Any, Any] = {**body_of(messages), 7: "seven"}
    assert encoder.encode(odd) == encode(odd)


def test_what_is_kept_stays_within_its_bytes_and_a_larger_history_is_encoded_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_cache, "KEPT_BYTES", 4000)
    encoder = started()
    small = [history(3, tag=str(n)) for n in range(6)]
    for messages in small:
        encoder.encode(body_of(messages))
        kept = encoder._conversations
        assert sum(len(prefix) + len(start) for prefix, start, _ in kept) <= 4000 and kept
    large = [*history(2), user_message("x" * 5000), *history(1)]
    for end in (len(large) - 2, len(large)):
        body = body_of(large[:end])
        assert encoder.encode(body) == encode(body)
        assert all(count != end for _, _, count in encoder._conversations)


def test_a_clients_first_request_loads_no_pickle_and_the_end_marker_is_pickles() -> None:
    import pickle

    assert request_cache._END == pickle.APPENDS + pickle.STOP
    code = ("import sys; from kimicode.llm.request_cache import RequestEncoder; "
            "RequestEncoder().encode({'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}] * 3}); "
            "print('pickle' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(request_cache.__file__).parents[2])})
    assert run.stdout.strip() == "False"  # (kimicode -p makes one request: it need not load pickle)
