"""A battery of checks that tells whether an endpoint serves a model the way kimicode needs it served,
in the spirit of Moonshot's Kimi Vendor Verifier but for any OpenAI-compatible endpoint.

Every request goes through kimicode's own client, so the battery tests the path a run takes (the fields
this endpoint is known to take, the max-tokens field it honours, overflow recognition) and whatever it
learns on the way is kept for later runs. Which checks are required depends on what the model is known
to do: a thinking model must stream ``reasoning_content`` and take it back; a vision model must take an
image; a model kimicode has no profile for is held only to what every run needs (a streamed reply, tool
calls with valid JSON and stable ids, a bounded reply, a recognisable context overflow).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kimicode.config import Config
from kimicode.llm.client import ChatClient, ContextOverflowError, LLMError, Reply
from kimicode.llm.errors import AuthError
from kimicode.llm.messages import Image, assistant_message, tool_messages, user_message
from kimicode.llm.profiles import profile_for
from kimicode.llm.setup import ModelSetup

TOOL_CALLS_CHECKED = 5
CODE_WORDS = ("KUMQUAT", "TAMARIND", "PERSIMMON", "RAMBUTAN", "SOURSOP", "LONGAN")
REPLY_TOKENS = 192  # enough for a short answer or a tool call; a model that rambles is cut off there
THINKING_TOKENS = 1024
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name, e.g. Paris"}},
            "required": ["city"],
        },
    },
}
CITIES = ("Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Perth", "Quito", "Riga")
WEATHER_RESULT = '{"temp_c": 18, "sky": "clear"}'
WEATHER_QUESTION = "What is the weather in Paris right now? Use the get_weather tool, then tell me the temperature."
# The temperature the tool_call_ids check hands back, one picked at random: a value only the result holds,
# so an answer that names it shows the result reached the model as the result of its call.
RESULT_TEMPERATURES = (13, 23, 27, 29, 31, 33, 37)
# The id a Kimi model gives a tool call and is trained to see again: functions.NAME:IDX.
KIMI_TOOL_CALL_ID = r"functions\.{name}:\d+"
# Filler for the long-context checks: ordinary words, about four characters per token.
FILLER = "The quick brown fox jumps over the lazy dog while the river runs past the old mill. "
CHARS_PER_TOKEN = 4
LONG_CONTEXT_SHARE = 0.7  # of the window, for the "long context" check
OVERFLOW_SHARE = 1.3  # of the window, for the "context overflow" check


@dataclass
class Check:
    name: str
    ok: bool
    required: bool
    ms: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CheckFailed(Exception):
    """A check's verdict: the message says what was wrong."""


@dataclass
class Battery:
    config: Config
    model: ModelSetup
    skip: set[str] = field(default_factory=set)
    calls: int = TOOL_CALLS_CHECKED
    # What the client learned about the endpoint while the checks ran (one line each).
    learned: list[str] = field(default_factory=list)
    # The plain tool call, for the checks that build on it.
    _tool_reply: Reply | None = None
    _stream_reply: Reply | None = None
    _chunk_ids: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A verdict in minutes, not the patience of a run: few retries, a bounded wait per request.
        quick = replace(
            self.config,
            max_retries=min(self.config.max_retries, 1),
            request_timeout=min(self.config.request_timeout, 180.0),
        )
        self.client = ChatClient(quick, self.model.profile, self.model.endpoint, self.model.store)

    @property
    def profile(self) -> Any:
        return self.client.profile

    def plan(self) -> list[tuple[str, bool, Callable[[], Awaitable[str]]]]:
        """(name, required, check) in the order they run; the overflow check comes before the long
        context one, so a window the endpoint states in its error sizes the long prompt."""
        p = self.model.profile
        return [
            ("models", False, self.models_listed),
            ("streaming", True, self.streaming),
            ("system_prompt", True, self.system_prompt),
            ("usage", False, self.usage),
            ("max_tokens", True, self.max_tokens),
            ("sampling", p.sampling(True) is not None, self.sampling),
            ("tool_call", True, self.tool_call),
            ("tool_call_ids", True, self.tool_call_ids),
            ("parallel_tool_calls", p.known, self.parallel_tool_calls),
            ("tool_call_json", True, self.tool_call_json),
            ("reasoning_round_trip", p.thinking, self.reasoning_round_trip),
            ("thinking_off", p.thinking, self.thinking_off),
            # (required by what the model is, not by what this endpoint was seen to do with its images)
            ("image_input", profile_for(self.config.model).vision and p.known, self.image_input),
            ("context_overflow", True, self.context_overflow),
            ("long_context", False, self.long_context),
            ("error_shapes", False, self.error_shapes),
        ]

    async def run(self, on_check: Callable[[Check], None] | None = None) -> list[Check]:
        results: list[Check] = []
        try:
            for name, required, check in self.plan():
                if name in self.skip:
                    result = Check(name, True, False, 0, "skipped (--skip)")
                else:
                    started = time.monotonic()
                    try:
                        ok, detail = True, await check()
                    except CheckFailed as failed:
                        ok, detail = False, str(failed)
                    except LLMError as err:
                        ok, detail = False, err.message
                    result = Check(name, ok, required, int((time.monotonic() - started) * 1000), detail)
                results.append(result)
                if on_check:
                    on_check(result)
        finally:
            await self.client.aclose()
        return results

    # -- helpers ---------------------------------------------------------------------------------------

    async def ask(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        thinking: bool = False,
        max_tokens: int = REPLY_TOKENS,
        on_chunk: Callable[[dict[str, Any]], None] | None = None,
    ) -> Reply:
        def note(why: str, delay: float) -> None:
            if not delay and why not in self.learned:
                self.learned.append(why)

        return await self.client.complete(
            messages, tools or [], thinking=thinking, max_tokens=max_tokens, on_retry=note, on_chunk=on_chunk
        )

    def _record_ids(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            for part in (choice.get("delta") or {}).get("tool_calls") or []:
                if part.get("id"):
                    self._chunk_ids.setdefault(int(part.get("index", 0)), []).append(str(part["id"]))

    @staticmethod
    def _weather_call(reply: Reply) -> dict[str, Any]:
        """The arguments of the reply's first get_weather call, checked against the tool's schema."""
        if not reply.tool_calls:
            said = reply.content.strip()[:80]
            raise CheckFailed(f"no tool call (finish_reason {reply.finish_reason!r}; the reply said {said!r})")
        return _valid_weather_args(reply.tool_calls[0])

    # -- the checks ------------------------------------------------------------------------------------

    async def models_listed(self) -> str:
        from kimicode.llm.models import ModelsError, fetch_models, find_model, teach

        try:
            listed = await asyncio.to_thread(fetch_models, self.config.base_url, self.config.api_key)
        except ModelsError as exc:
            raise CheckFailed(f"GET /models failed: {exc}") from exc
        teach(self.model.endpoint, listed)
        found = find_model(listed, self.config.model)
        if found is None:
            names = ", ".join(m.id for m in listed[:5]) or "none"
            raise CheckFailed(f"{self.config.model} is not among the {len(listed)} models listed ({names})")
        if found.context_window:
            self.client.learn_window(found.context_window, found.window_exact)
            bound = "" if found.window_exact else " (the trained size: an upper bound)"
            return f"{found.id} listed; context window {found.context_window:,} tokens{bound}"
        return f"{found.id} listed; no context window reported (kimicode assumes {self.profile.context_window:,})"

    async def streaming(self) -> str:
        pieces: list[float] = []
        started = time.monotonic()
        reply = await self.ask(
            [user_message("Count from 1 to 10, separated by spaces.")],
            max_tokens=64,
            on_chunk=lambda chunk: pieces.append(time.monotonic()) if _has_text(chunk) else None,
        )
        self._stream_reply = reply
        if not reply.content.strip():
            raise CheckFailed(f"the stream ended (finish_reason {reply.finish_reason!r}) with no text")
        first = f"first text after {int((pieces[0] - started) * 1000)} ms" if pieces else "no text deltas"
        if len(pieces) < 2:
            raise CheckFailed(f"the reply came in {len(pieces)} piece(s): the endpoint does not stream ({first})")
        return f"{len(pieces)} text deltas, {first}, finish_reason {reply.finish_reason!r}"

    async def system_prompt(self) -> str:
        # kimicode's whole prompt (tools, rules, skills) travels as the system message; some chat templates
        # drop it without a word (llama-cpp-python's gemma format). A word only the system message holds:
        word = secrets.choice(CODE_WORDS)
        reply = await self.ask(
            [
                {"role": "system", "content": f"The code word is {word}. When asked for the code word, answer with it alone."},
                user_message("What is the code word?"),
            ],
            max_tokens=64,
        )
        said = reply.content.strip()
        if word.lower() not in said.lower():
            raise CheckFailed(
                f"asked for the code word only the system message holds, the model said {said[:60]!r}: the system "
                "message does not reach it (a chat template that drops it?) or it does not follow it"
            )
        return f"the code word from the system message came back: {said[:40]!r}"

    async def usage(self) -> str:
        reply = self._stream_reply or await self.ask([user_message("Say OK.")], max_tokens=16)
        if not reply.usage.prompt_tokens:
            raise CheckFailed("no usage in the stream (kimicode then estimates tokens from the text, and shows no cost)")
        return f"prompt {reply.usage.prompt_tokens}, completion {reply.usage.completion_tokens} tokens"

    async def max_tokens(self) -> str:
        prompt = [user_message("Write a long story about a dragon who learns to bake bread. At least 500 words.")]
        endpoint = self.model.endpoint
        first = endpoint.max_tokens_field
        reply = await self.ask(prompt, max_tokens=16)
        if _bounded(reply, 16):
            return f"{first}=16 honoured (finish_reason {reply.finish_reason!r})"
        other = "max_tokens" if first == "max_completion_tokens" else "max_completion_tokens"
        endpoint.use_max_tokens_field(other)
        retry = await self.ask(prompt, max_tokens=16)
        if _bounded(retry, 16):
            self.client.save_learned()
            self.learned.append(f"{self.config.base_url} ignores {first}; kimicode sends {other} from now on")
            return f"{first} ignored, {other}=16 honoured: kimicode now sends {other} here (kept)"
        endpoint.use_max_tokens_field(first)
        raise CheckFailed(f"a reply asked for 16 tokens ran on ({_size(reply)}) with either field: replies are unbounded")

    async def sampling(self) -> str:
        pairs = [(thinking, self.profile.sampling(thinking)) for thinking in (True, False)]
        pairs = [(thinking, pair) for thinking, pair in pairs if pair is not None]
        if not pairs:
            return "kimicode sends no sampling parameters to this model"
        for thinking, _ in pairs:
            await self.ask([user_message("Say OK.")], thinking=thinking, max_tokens=16)
        dropped = {"temperature", "top_p"} & self.model.endpoint.rejected
        if dropped:
            raise CheckFailed(f"the endpoint refuses {', '.join(sorted(dropped))}: the model's sampling rules cannot be applied")
        sent = "; ".join(f"temperature {pair[0]}, top_p {pair[1]}" for _, pair in pairs)
        return f"accepted: {sent}"

    async def tool_call(self) -> str:
        self._chunk_ids.clear()
        self._tool_reply = await self.ask(
            [user_message(WEATHER_QUESTION)],
            tools=[WEATHER_TOOL],
            on_chunk=self._record_ids,
        )
        args = self._weather_call(self._tool_reply)
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
        if _is_kimi(self.config.model):
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
        cities = [_valid_weather_args(call)["city"] for call in reply.tool_calls]
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
                self._weather_call(reply)
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
        if "reasoning_content" in self.model.endpoint.rejected:
            raise CheckFailed("the endpoint refuses reasoning_content on assistant messages: the model loses its thinking between tool calls")
        return f"{len(reply.reasoning)} characters of reasoning_content, sent back on the tool-call turn and accepted"

    async def thinking_off(self) -> str:
        reply = await self.ask([user_message("Say OK.")], thinking=False, max_tokens=64)
        style = self.model.endpoint.thinking_style(self.config.thinking_style)
        if reply.reasoning.strip():
            raise CheckFailed(f"reasoning streamed with thinking off: the endpoint ignores the switch (thinking_style {style!r})")
        return f"no reasoning with thinking off (thinking_style {style!r})"

    async def image_input(self) -> str:
        model, endpoint = self.config.model, self.model.endpoint
        endpoint.forget_no_images(model)
        image = Image("image/png", _solid_png(32, 32, (220, 20, 20)), 32, 32)
        reply = await self.ask(
            [user_message("What colour is this image? Answer with one word.", [image])], max_tokens=256
        )
        if not endpoint.takes_images(model):
            raise CheckFailed(f"the endpoint refused the image: {model} takes no images there (runs send none)")
        self.client.save_learned()  # (what a refusal taught before is forgotten now)
        said = reply.content.strip()
        if "red" not in said.lower():
            raise CheckFailed(f"a red image was accepted, but the reply was {said[:60]!r}: the model does not see it")
        return f"a red 32×32 PNG: {said[:40]!r}"

    async def context_overflow(self) -> str:
        window = self.profile.context_window
        tokens = int(window * OVERFLOW_SHARE)
        try:
            reply = await self.ask([user_message(_filler(tokens) + "\nSay OK.")], max_tokens=16)
        except ContextOverflowError as err:
            stated = f"; the endpoint states a window of {err.limit:,}" if err.limit else ""
            return f"~{tokens:,} tokens refused and recognised as an overflow{stated}"
        prompt = reply.usage.prompt_tokens
        counted = f" (it counted {prompt:,})" if prompt else ""
        raise CheckFailed(
            f"a prompt of ~{tokens:,} tokens, over the {window:,}-token window, was accepted{counted}: the endpoint "
            "truncates silently or its window is larger; set context_window in config.toml"
        )

    async def long_context(self) -> str:
        window = self.profile.context_window
        tokens = int(window * LONG_CONTEXT_SHARE)
        filler = _filler(tokens)
        middle = len(filler) // 2
        text = filler[:middle] + " The secret word is PINEAPPLE. " + filler[middle:]
        try:
            reply = await self.ask(
                [user_message(text + "\nWhat is the secret word? Answer with the word only.")], max_tokens=32
            )
        except ContextOverflowError as err:
            raise CheckFailed(f"~{tokens:,} tokens ({LONG_CONTEXT_SHARE:.0%} of the {window:,}-token window) refused: {err.message}") from err
        found = "found" if "pineapple" in reply.content.lower() else "not found"
        counted = f", {reply.usage.prompt_tokens:,} as the endpoint counted" if reply.usage.prompt_tokens else ""
        return f"~{tokens:,} tokens accepted{counted}; the word in the middle: {found}"

    async def error_shapes(self) -> str:
        wrong_key = await self._error_of(api_key="kimicode-verify-invalid-key")
        if wrong_key is not None and not isinstance(wrong_key, AuthError):
            raise CheckFailed(f"a wrong key was not answered 401/403: {wrong_key.message}")
        no_model = await self._error_of(model="kimicode-verify-no-such-model")
        return "; ".join(
            [
                f"a wrong key: {wrong_key.status}" if wrong_key else "any key is accepted",
                f"an unknown model: {no_model.status}" if no_model else "an unknown model is answered anyway",
            ]
        )

    async def _error_of(self, **changes: str) -> LLMError | None:
        """The error a one-off request with ``changes`` to the config gets (None: it was answered)."""
        client = ChatClient(replace(self.client.config, max_retries=0, **changes), self.profile, self.model.endpoint)
        try:
            await client.complete([user_message("Say OK.")], [], thinking=False, max_tokens=8)
            return None
        except LLMError as err:
            return err
        finally:
            await client.aclose()


def _is_kimi(model: str) -> bool:
    """A Kimi model, under Moonshot's name or a server's (``moonshotai/Kimi-K2-Instruct``)."""
    return model.rsplit("/", 1)[-1].lower().startswith("kimi-")


def verdict(checks: list[Check]) -> bool:
    return all(check.ok for check in checks if check.required)


def _has_text(chunk: dict[str, Any]) -> bool:
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or [])


def _valid_weather_args(call: Any) -> dict[str, Any]:
    if call.name != "get_weather":
        raise CheckFailed(f"called {call.name!r}, not get_weather")
    try:
        args = json.loads(call.arguments or "")
    except ValueError:
        raise CheckFailed(f"arguments are not valid JSON: {call.arguments[:60]!r}") from None
    if not isinstance(args, dict) or not isinstance(args.get("city"), str) or not args["city"].strip():
        raise CheckFailed(f"arguments do not match the schema (a 'city' string): {call.arguments[:60]!r}")
    return args


def _bounded(reply: Reply, limit: int) -> bool:
    """Did the reply stop at about ``limit`` tokens? (The usage count if there is one, else the text.)"""
    if reply.usage.completion_tokens:
        return reply.usage.completion_tokens <= limit + 2
    return len(reply.content) + len(reply.reasoning) <= limit * 8


def _size(reply: Reply) -> str:
    if reply.usage.completion_tokens:
        return f"{reply.usage.completion_tokens} tokens"
    return f"{len(reply.content)} characters"


def _filler(tokens: int) -> str:
    chars = tokens * CHARS_PER_TOKEN
    return (FILLER * (chars // len(FILLER) + 1))[:chars]


def _solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG, written here so the check needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
    return png
