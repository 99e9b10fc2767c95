"""A battery of checks that tells whether an endpoint serves a model the way kimicode needs it served,
in the spirit of Moonshot's Kimi Vendor Verifier but for any OpenAI-compatible endpoint.

Every request goes through kimicode's own client, so the battery tests the path a run takes (the fields
this endpoint is known to take, the max-tokens field it honours, overflow recognition) and whatever it
learns on the way is kept for later runs. Which checks are required depends on what the model is known
to do: a thinking model must stream ``reasoning_content`` and take it back; a vision model must take an
image; a model kimicode has no profile for is held only to what every run needs (a streamed reply, tool
calls with valid JSON and stable ids, a bounded reply, a recognisable context overflow).

Invariants:
- The checks run one after another in the order of ``Battery.plan``; a failure or an LLMError is that
  check's verdict and the next one still runs.
- Which checks are required depends only on what kimicode knows of the model (its profile), never on what
  this endpoint did in an earlier check.
- The battery's client is closed when the run ends, whatever happened.

The tool-call checks are in verify_tools.py; what the checks send and the pure judgements of the replies
are in verify_material.py.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kimicode.config import Config
from kimicode.llm.client import ChatClient, ContextOverflowError, LLMError, Reply
from kimicode.llm.errors import AuthError
from kimicode.llm.messages import Image, user_message
from kimicode.llm.profiles import ModelProfile, profile_for
from kimicode.llm.reply import ChunkCallback
from kimicode.llm.setup import ModelSetup
from kimicode.llm.verify_material import (
    CODE_WORDS,
    LONG_CONTEXT_SHARE,
    OVERFLOW_SHARE,
    REPLY_TOKENS,
    TOOL_CALLS_CHECKED,
    CheckFailed,
    bounded,
    filler,
    has_text,
    size,
    solid_png,
)
from kimicode.llm.verify_tools import ToolCallChecks

__all__ = ["Battery", "Check", "CheckFailed", "verdict"]


@dataclass
class Check:
    name: str
    ok: bool
    required: bool
    ms: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Battery:
    config: Config
    model: ModelSetup
    skip: set[str] = field(default_factory=set)
    calls: int = TOOL_CALLS_CHECKED
    # What the client learned about the endpoint while the checks ran (one line each).
    learned: list[str] = field(default_factory=list)
    _stream_reply: Reply | None = None

    def __post_init__(self) -> None:
        # A verdict in minutes, not the patience of a run: few retries, a bounded wait per request.
        quick = replace(
            self.config,
            max_retries=min(self.config.max_retries, 1),
            request_timeout=min(self.config.request_timeout, 180.0),
        )
        self.client = ChatClient(quick, self.model.profile, self.model.endpoint, self.model.store)

    @property
    def profile(self) -> ModelProfile:
        return self.client.profile

    def plan(self) -> list[tuple[str, bool, Callable[[], Awaitable[str]]]]:
        """(name, required, check) in the order they run; the overflow check comes before the long
        context one, so a window the endpoint states in its error sizes the long prompt."""
        p = self.model.profile
        tools = ToolCallChecks(self.ask, self.config.model, self.model.endpoint, self.calls)
        return [
            ("models", False, self.models_listed),
            ("streaming", True, self.streaming),
            ("system_prompt", True, self.system_prompt),
            ("usage", False, self.usage),
            ("max_tokens", True, self.max_tokens),
            ("sampling", p.sampling(True) is not None, self.sampling),
            ("tool_call", True, tools.tool_call),
            ("tool_call_ids", True, tools.tool_call_ids),
            ("parallel_tool_calls", p.known, tools.parallel_tool_calls),
            ("tool_call_json", True, tools.tool_call_json),
            ("reasoning_round_trip", p.thinking, tools.reasoning_round_trip),
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
        on_chunk: ChunkCallback | None = None,
    ) -> Reply:
        def note(why: str, delay: float) -> None:
            if not delay and why not in self.learned:
                self.learned.append(why)

        return await self.client.complete(
            messages, tools or [], thinking=thinking, max_tokens=max_tokens, on_retry=note, on_chunk=on_chunk
        )

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
            on_chunk=lambda chunk: pieces.append(time.monotonic()) if has_text(chunk) else None,
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
        if bounded(reply, 16):
            return f"{first}=16 honoured (finish_reason {reply.finish_reason!r})"
        other = "max_tokens" if first == "max_completion_tokens" else "max_completion_tokens"
        endpoint.use_max_tokens_field(other)
        retry = await self.ask(prompt, max_tokens=16)
        if bounded(retry, 16):
            self.client.save_learned()
            self.learned.append(f"{self.config.base_url} ignores {first}; kimicode sends {other} from now on")
            return f"{first} ignored, {other}=16 honoured: kimicode now sends {other} here (kept)"
        endpoint.use_max_tokens_field(first)
        raise CheckFailed(f"a reply asked for 16 tokens ran on ({size(reply)}) with either field: replies are unbounded")

    async def sampling(self) -> str:
        pairs = [(thinking, pair) for thinking in (True, False) if (pair := self.profile.sampling(thinking)) is not None]
        if not pairs:
            return "kimicode sends no sampling parameters to this model"
        for thinking, _ in pairs:
            await self.ask([user_message("Say OK.")], thinking=thinking, max_tokens=16)
        dropped = {"temperature", "top_p"} & self.model.endpoint.rejected
        if dropped:
            raise CheckFailed(f"the endpoint refuses {', '.join(sorted(dropped))}: the model's sampling rules cannot be applied")
        sent = "; ".join(f"temperature {pair[0]}, top_p {pair[1]}" for _, pair in pairs)
        return f"accepted: {sent}"

    async def thinking_off(self) -> str:
        reply = await self.ask([user_message("Say OK.")], thinking=False, max_tokens=64)
        style = self.model.endpoint.thinking_style(self.config.thinking_style)
        if reply.reasoning.strip():
            raise CheckFailed(f"reasoning streamed with thinking off: the endpoint ignores the switch (thinking_style {style!r})")
        return f"no reasoning with thinking off (thinking_style {style!r})"

    async def image_input(self) -> str:
        model, endpoint = self.config.model, self.model.endpoint
        endpoint.forget_no_images(model)
        image = Image("image/png", solid_png(32, 32, (220, 20, 20)), 32, 32)
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
            reply = await self.ask([user_message(filler(tokens) + "\nSay OK.")], max_tokens=16)
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
        padding = filler(tokens)
        middle = len(padding) // 2
        text = padding[:middle] + " The secret word is PINEAPPLE. " + padding[middle:]
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

    async def _error_of(self, *, api_key: str | None = None, model: str | None = None) -> LLMError | None:
        """The error a one-off request with another key or model gets (None: it was answered)."""
        config = self.client.config
        config = replace(config, max_retries=0, api_key=api_key or config.api_key, model=model or config.model)
        client = ChatClient(config, self.profile, self.model.endpoint)
        try:
            await client.complete([user_message("Say OK.")], [], thinking=False, max_tokens=8)
            return None
        except LLMError as err:
            return err
        finally:
            await client.aclose()


def verdict(checks: list[Check]) -> bool:
    return all(check.ok for check in checks if check.required)
