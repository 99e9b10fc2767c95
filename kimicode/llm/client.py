"""Streaming chat-completions client for any OpenAI-compatible endpoint (Moonshot by default).

The request body is built here as plain JSON and handed to the openai SDK's low-level ``post`` as bytes:
the SDK's typed ``chat.completions.create`` walks every message through its params transform on each
call, which grows with the history and would dominate a long session's per-step cost.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kimicode.config import Config
from kimicode.llm.limiter import Limiter, limiter_for
from kimicode.llm.profiles import ModelProfile
from kimicode.security.redact import redact


class LLMError(Exception):
    """A model request that failed for good. ``message`` is one line a user can act on."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        # Endpoints echo request details (a rejected key, the Authorization header) in error bodies; the
        # message is shown on stderr and in json results, so it is redacted here, once, for every error.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after: float | None = None


class AuthError(LLMError):
    """The endpoint rejected the API key (401/403)."""


class ContextOverflowError(LLMError):
    """The request exceeded the model's context window."""


@dataclass
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class ToolCallRequest:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it (may be malformed)

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Reply:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    finish_reason: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)


DeltaCallback = Callable[[str], None]
RetryCallback = Callable[[str, float], None]  # (what went wrong, seconds until the retry)


class ChatClient:
    def __init__(self, config: Config, profile: ModelProfile) -> None:
        self.config = config
        self.profile = profile
        self._sdk: Any = None
        self._limiter: Limiter | None = None
        # Model requests of this client in flight now, and the most at once (reported by swarm runs).
        self.in_flight = 0
        self.peak_in_flight = 0

    @property
    def limiter(self) -> Limiter:
        """The endpoint's adaptive concurrency limit, shared with every client of this process (and, with
        KIMICODE_LIMITER set, of the whole batch)."""
        if self._limiter is None:
            self._limiter = limiter_for(self.config.base_url, self.config.swarm_concurrency)
        return self._limiter

    def prepare(self) -> None:
        """Make the SDK's client now: its HTTP transport loads TLS certificates (~60 ms). Safe to call
        from a thread, ahead of the first request, so that request does not wait for it."""
        self._client()

    def _client(self) -> Any:
        if self._sdk is None:
            from openai import AsyncOpenAI  # heavy: only when the first request is made

            self._sdk = AsyncOpenAI(
                api_key=self.config.api_key or "missing",
                base_url=self.config.base_url,
                max_retries=0,  # retries live here, where broken streams are retried too
                # A plain number is the limit for each network operation: connecting, and every read of
                # the stream. So this is the stall limit (no byte for that long); the total deadline
                # across attempts is kept in complete().
                timeout=self.config.stream_stall_timeout,
            )
        return self._sdk

    def build_body(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        thinking: bool,
        max_tokens: int | None = None,
        session_id: str = "",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = tools
        if max_tokens:
            body["max_completion_tokens"] = max_tokens
        sampling = self.profile.sampling(thinking)
        if sampling:
            body["temperature"], body["top_p"] = sampling
        if session_id:
            body["prompt_cache_key"] = session_id
        style = self.config.thinking_style
        if self.profile.thinking and style == "moonshot":
            body["thinking"] = {"type": "enabled" if thinking else "disabled"}
        elif self.profile.thinking and style == "chat_template":
            body["chat_template_kwargs"] = {"thinking": thinking}
        return body

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        thinking: bool,
        max_tokens: int | None = None,
        session_id: str = "",
        on_text: DeltaCallback | None = None,
        on_thinking: DeltaCallback | None = None,
        on_retry: RetryCallback | None = None,
    ) -> Reply:
        """One model reply, streamed through the callbacks, retried on transient failures."""
        body = self.build_body(messages, tools, thinking=thinking, max_tokens=max_tokens, session_id=session_id)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self._client()  # the SDK's first import takes a moment; it is no part of the endpoint's time
        limit = self.config.request_timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + limit
        attempt = 0
        last_problem = ""
        while True:
            deadline_cm = asyncio.timeout_at(deadline)
            try:
                async with deadline_cm:
                    return await self._limited_attempt(payload, on_text, on_thinking)
            except TimeoutError:
                if not deadline_cm.expired():
                    raise
                problem = f"; last problem: {last_problem}" if last_problem else ""
                raise LLMError(
                    f"gave up after {limit:g} s (request_timeout) without a complete reply from the model"
                    f"{problem}"
                ) from None
            except LLMError as err:
                if not err.retryable or attempt >= self.config.max_retries:
                    if err.retryable:
                        raise LLMError(
                            f"{err.message} (gave up after {attempt + 1} attempts)", status=err.status
                        ) from err
                    raise
                last_problem = err.message
                delay = self._backoff(attempt, err.retry_after)
                if loop.time() + delay >= deadline:
                    raise LLMError(
                        f"{err.message} (gave up after {loop.time() - started:.0f} s: a retry in {delay:.1f} s "
                        f"would pass the {limit:g} s request_timeout)",
                        status=err.status,
                    ) from err
                attempt += 1
                if on_retry:
                    on_retry(err.message, delay)
                await asyncio.sleep(delay)

    async def _limited_attempt(
        self, payload: bytes, on_text: DeltaCallback | None, on_thinking: DeltaCallback | None
    ) -> Reply:
        """One request attempt inside a slot of the endpoint's limiter, reporting how it went."""
        permit = await self.limiter.acquire()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            reply = await self._stream_once(payload, on_text, on_thinking)
        except LLMError as err:
            permit.done("throttled" if err.status == 429 else "error", err.retry_after)
            raise
        except BaseException:
            permit.done("error")
            raise
        finally:
            self.in_flight -= 1
        permit.done("ok")
        return reply

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), 120.0)
        base = self.config.retry_base_delay * (2**attempt)
        return min(base, 30.0) * (0.5 + random.random() / 2)

    async def _stream_once(
        self, payload: bytes, on_text: DeltaCallback | None, on_thinking: DeltaCallback | None
    ) -> Reply:
        import openai
        from openai import AsyncStream

        client = self._client()
        reply = Reply()
        calls: dict[int, ToolCallRequest] = {}
        try:
            stream = await client.post(
                "/chat/completions",
                cast_to=object,
                content=payload,
                options={"headers": {"Content-Type": "application/json"}},
                stream=True,
                stream_cls=AsyncStream[object],
            )
            try:
                async for chunk in stream:
                    self._absorb(chunk, reply, calls, on_text, on_thinking)
            finally:
                await stream.close()
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APITimeoutError as exc:
            raise self._stalled() from exc
        except openai.APIConnectionError as exc:
            raise LLMError(f"connection to {self.config.base_url} failed or broke mid-reply", retryable=True) from exc
        except openai.APIError as exc:
            raise LLMError(f"the model stream reported an error: {exc.message}", retryable=True) from exc
        except json.JSONDecodeError as exc:
            raise LLMError("the model stream sent a malformed chunk", retryable=True) from exc
        except Exception as exc:
            # Some SDK versions let the HTTP library's own errors escape while a stream is read.
            if not type(exc).__module__.startswith("httpx"):
                raise
            if "Timeout" in type(exc).__name__:
                raise self._stalled() from exc
            raise LLMError(f"connection to {self.config.base_url} failed or broke mid-reply", retryable=True) from exc
        reply.tool_calls = [calls[i] for i in sorted(calls)]
        for index, call in zip(sorted(calls), reply.tool_calls):
            if not call.id:
                call.id = f"call_{index}"
        if not reply.finish_reason:
            raise LLMError("the model stream ended before the reply was complete", retryable=True)
        return reply

    def _stalled(self) -> LLMError:
        return LLMError(f"no data from the endpoint for {self.config.stream_stall_timeout:g} s", retryable=True)

    @staticmethod
    def _absorb(
        chunk: Any,
        reply: Reply,
        calls: dict[int, ToolCallRequest],
        on_text: DeltaCallback | None,
        on_thinking: DeltaCallback | None,
    ) -> None:
        if not isinstance(chunk, dict):
            raise LLMError("the model stream sent a chunk that is not a JSON object", retryable=True)
        if chunk.get("usage"):
            reply.usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if thought:
                reply.reasoning += thought
                if on_thinking:
                    on_thinking(thought)
            text = delta.get("content")
            if text:
                reply.content += text
                if on_text:
                    on_text(text)
            for part in delta.get("tool_calls") or []:
                index = part.get("index", len(calls))
                call = calls.setdefault(index, ToolCallRequest(id="", name="", arguments=""))
                if part.get("id"):
                    call.id = part["id"]
                function = part.get("function") or {}
                if function.get("name") and not call.name:
                    call.name = function["name"]
                if function.get("arguments"):
                    call.arguments += function["arguments"]
            if choice.get("usage"):  # Moonshot puts usage on the final choice
                reply.usage = _usage(choice["usage"])
            if choice.get("finish_reason"):
                reply.finish_reason = choice["finish_reason"]


def _usage(raw: dict[str, Any]) -> TokenUsage:
    cached = raw.get("cached_tokens")
    if cached is None:
        cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return TokenUsage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def _status_error(exc: Any) -> LLMError:
    status: int = exc.status_code
    detail = _error_detail(exc)
    if status in (401, 403):
        return AuthError(
            f"the API rejected the key ({status}: {detail}); check KIMI_API_KEY or api_key in config.toml",
            status=status,
        )
    if status == 400 and "token limit" in detail.lower():
        return ContextOverflowError(f"the conversation exceeded the model's context ({detail})", status=status)
    if status == 429 or status >= 500 or status == 408:
        err = LLMError(f"the model endpoint answered {status}: {detail}", status=status, retryable=True)
        err.retry_after = _retry_after(exc)
        return err
    return LLMError(f"the model endpoint answered {status}: {detail}", status=status)


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            kind = error.get("type")
            return f"{error['message']}" + (f" [{kind}]" if kind else "")
    return str(getattr(exc, "message", exc)).splitlines()[0][:300]


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
