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
from dataclasses import dataclass, field, replace
from typing import Any

from kimicode.config import Config
from kimicode.llm.endpoint import MAX_TOKENS_FIELDS, OPTIONAL_FIELDS, EndpointProfile, EndpointStore, vendor_of
from kimicode.llm.errors import (
    AuthError,
    ContextOverflowError,
    LLMError,
    context_overflow,
    error_text,
    images_refused,
    rejected_fields,
)
from kimicode.llm.limiter import Limiter, limiter_for
from kimicode.llm.reach import CONNECT_RETRIES, CONNECT_RETRY_BUDGET, CONNECT_RETRY_DELAY, EndpointUnreachable, unreachable
from kimicode.llm.profiles import ModelProfile

__all__ = ["AuthError", "ChatClient", "ContextOverflowError", "LLMError", "Reply", "TokenUsage", "ToolCallRequest"]


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


class EmptyStreamError(LLMError):
    """A 200 stream that carried no event at all."""


class ConnectionBroke(LLMError):
    """The connection failed before an unstreamed answer came."""


DeltaCallback = Callable[[str], None]
RetryCallback = Callable[[str, float], None]  # (what went wrong, seconds until the retry)
ChunkCallback = Callable[[dict[str, Any]], None]


class ChatClient:
    """Talks to one endpoint for one model. ``endpoint`` is what is known about the endpoint (the fields
    it takes, its windows); what the client learns while talking is kept there and saved to ``store``."""

    def __init__(
        self,
        config: Config,
        profile: ModelProfile,
        endpoint: EndpointProfile | None = None,
        store: EndpointStore | None = None,
    ) -> None:
        self.config = config
        self.profile = profile
        self.endpoint = endpoint or EndpointProfile(config.base_url, vendor_of(config.base_url))
        self.store = store
        self._sdk: Any = None
        self._limiter: Limiter | None = None
        self._probed = False
        self._probe_lock = asyncio.Lock()
        # Model requests of this client in flight now, and the most at once (reported by swarm runs).
        self.in_flight = 0
        self.peak_in_flight = 0

    async def aclose(self) -> None:
        """Close the HTTP connections (and say so to the event loop before it closes)."""
        sdk, self._sdk = self._sdk, None
        if sdk is not None:
            await sdk.close()

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
        """The request as plain JSON: only the optional fields this endpoint takes (llm/endpoint.py)."""
        endpoint = self.endpoint
        if not endpoint.takes("reasoning_content"):
            messages = [_without_reasoning(m) if "reasoning_content" in m else m for m in messages]
        if not endpoint.takes_images(self.config.model):
            messages = [_without_media(m) if _carries_media(m) else m for m in messages]
        body: dict[str, Any] = {"model": self.config.model, "messages": messages, "stream": True}
        if endpoint.takes("stream_options"):
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = tools
        if max_tokens:
            body[endpoint.max_tokens_field] = max_tokens
        sampling = self.profile.sampling(thinking)
        if sampling:
            for name, value in zip(("temperature", "top_p"), sampling):
                if endpoint.takes(name):
                    body[name] = value
        if session_id and endpoint.takes("prompt_cache_key"):
            body["prompt_cache_key"] = session_id
        configured = self.config.thinking_style
        if self.profile.thinking or configured != "auto":
            style = endpoint.thinking_style(configured)
            if style == "moonshot":
                body["thinking"] = {"type": "enabled" if thinking else "disabled"}
            elif style == "chat_template":
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
        on_chunk: ChunkCallback | None = None,
    ) -> Reply:
        """One model reply, streamed through the callbacks, retried on transient failures.

        A request the endpoint refuses because of an optional field it does not take is sent again once
        without that field, and the endpoint's profile remembers it; so is one refused for its images (each
        image becomes a line saying it was not sent); an overflow that states the window teaches the window
        before it is raised (the caller compacts and asks again)."""
        await self.ready()
        tried: set[str] = set()
        while True:
            body = self.build_body(messages, tools, thinking=thinking, max_tokens=max_tokens, session_id=session_id)
            try:
                return await self._complete_body(body, on_text, on_thinking, on_retry, on_chunk)
            except ContextOverflowError as err:
                if err.limit:
                    self.learn_window(err.limit)
                raise
            except LLMError as err:
                if err.images_refused and any(_carries_media(m) for m in body["messages"]):
                    self._learn_no_images(on_retry)
                    continue  # (the next body carries no image: this cannot repeat)
                refused = [name for name in err.rejected if name not in tried]
                if not refused:
                    raise
                tried.update(refused)
                # Requests in flight at the same time (a swarm's) learn the same thing: each is sent again,
                # but only the first to learn it saves it and says so.
                news = [name for name in refused if self.endpoint.reject(name)]
                if news:
                    self.save_learned()
                    if on_retry:
                        on_retry(f"{self.config.base_url} does not take {', '.join(news)}; sending without it", 0.0)

    async def ready(self) -> None:
        """Learn what GET /models tells about the endpoint, once, before the first request is built (the
        requests of a swarm that start together all wait for it)."""
        if self._probed:
            return
        async with self._probe_lock:
            if not self._probed:
                await self._probe_models()
                self._probed = True

    def learn_window(self, window: int, exact: bool = True) -> None:
        """The endpoint's window for this model: used from now on (unless the user set one) and kept."""
        if self.endpoint.learn_window(self.config.model, window, exact):
            self.save_learned()
        known = self.endpoint.windows.get(self.config.model)
        if known and not self.config.context_window and known != self.profile.context_window:
            self.profile = replace(self.profile, context_window=known)

    def _learn_no_images(self, on_retry: RetryCallback | None) -> None:
        """The model takes no images here: from now on (and in later runs) none is sent, and the profile
        says so (a run built from it offers no screenshot tool)."""
        if self.endpoint.refuse_images(self.config.model):
            self.save_learned()
            if on_retry:
                on_retry(f"{self.config.model} at {self.config.base_url} takes no images; sending without them", 0.0)
        self.profile = replace(self.profile, vision=False, video=False)

    def save_learned(self) -> None:
        """Keep what is known about the endpoint now (the store writes only when something changed)."""
        if self.store is not None:
            self.store.save_quietly(self.endpoint)

    async def _probe_models(self) -> None:
        """Ask GET /models what server this is and how large this model's window is, when that is not
        known yet (llm/endpoint.py says when); a failure only means nothing is learned."""
        if not self.endpoint.needs_models_probe():
            return
        from kimicode.llm.models import ModelsError, fetch_models, find_model, teach

        try:
            models = await asyncio.to_thread(fetch_models, self.config.base_url, self.config.api_key, 3.0)
        except ModelsError:
            models = []
        teach(self.endpoint, models)
        listed = find_model(models, self.config.model)
        if listed is not None and listed.context_window:
            self.learn_window(listed.context_window, listed.window_exact)
        self.save_learned()

    async def _complete_body(
        self,
        body: dict[str, Any],
        on_text: DeltaCallback | None,
        on_thinking: DeltaCallback | None,
        on_retry: RetryCallback | None,
        on_chunk: ChunkCallback | None,
    ) -> Reply:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        sent = _optional_fields(body)
        self._client()  # the SDK's first import takes a moment; it is no part of the endpoint's time
        limit = self.config.request_timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + limit
        attempt = 0
        last_problem = ""
        plain: bytes | None = None  # the same request unstreamed, once a stream came back empty
        stale_connection_retry = False
        while True:
            deadline_cm = asyncio.timeout_at(deadline)
            try:
                async with deadline_cm:
                    return await self._limited_attempt(payload, sent, on_text, on_thinking, on_chunk, plain)
            except EmptyStreamError:
                if plain is not None:
                    raise
                # Some servers fail a streamed request with an empty 200 (llama-cpp-python on a prompt over
                # its window); asked once without streaming they answer the error, or the reply. Such a
                # server may also drop the connection the stream came on, so a connection error on the
                # first unstreamed attempt is retried at once, without a word.
                unstreamed = {key: value for key, value in body.items() if key != "stream_options"}
                plain = json.dumps({**unstreamed, "stream": False}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                stale_connection_retry = True
            except TimeoutError:
                if not deadline_cm.expired():
                    raise
                problem = f"; last problem: {last_problem}" if last_problem else ""
                raise LLMError(
                    f"gave up after {limit:g} s (request_timeout) without a complete reply from the model"
                    f"{problem}"
                ) from None
            except EndpointUnreachable as err:
                # Not overload: a few quick, silent retries (a server still starting), then one line.
                delay = CONNECT_RETRY_DELAY * 2**attempt
                if attempt >= min(CONNECT_RETRIES, self.config.max_retries) or (
                    loop.time() + delay - started > CONNECT_RETRY_BUDGET
                ):
                    tries = f"{attempt + 1} attempt{'s' * (attempt > 0)}"
                    raise EndpointUnreachable(
                        f"{err.message} ({tries}); check the endpoint's URL (KIMI_BASE_URL, --base-url) and that "
                        "its server is running",
                    ) from err
                attempt += 1
                await asyncio.sleep(delay)
            except LLMError as err:
                if plain is not None and stale_connection_retry and isinstance(err, ConnectionBroke):
                    stale_connection_retry = False
                    continue
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
        self,
        payload: bytes,
        sent: list[str],
        on_text: DeltaCallback | None,
        on_thinking: DeltaCallback | None,
        on_chunk: ChunkCallback | None,
        plain: bytes | None = None,
    ) -> Reply:
        """One request attempt inside a slot of the endpoint's limiter, reporting how it went."""
        permit = await self.limiter.acquire()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if plain is not None:
                reply = await self._plain_once(plain, sent, on_text, on_thinking)
            else:
                reply = await self._stream_once(payload, sent, on_text, on_thinking, on_chunk)
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
        self,
        payload: bytes,
        sent: list[str],
        on_text: DeltaCallback | None,
        on_thinking: DeltaCallback | None,
        on_chunk: ChunkCallback | None,
    ) -> Reply:
        import openai
        from openai import AsyncStream

        client = self._client()
        reply = Reply()
        calls: dict[int, ToolCallRequest] = {}
        received = 0
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
                    received += 1
                    if on_chunk is not None and isinstance(chunk, dict):
                        on_chunk(chunk)
                    self._absorb(chunk, reply, calls, on_text, on_thinking)
            finally:
                await stream.close()
        except openai.APIStatusError as exc:
            raise _status_error(exc, sent, bool(self.config.api_key)) from exc
        except openai.APITimeoutError as exc:
            raise self._stalled() from exc
        except openai.APIConnectionError as exc:
            broke = LLMError(f"connection to {self.config.base_url} failed or broke mid-reply", retryable=True)
            raise unreachable(self.config.base_url, exc) or broke from exc
        except openai.APIError as exc:
            # An error event inside a 200 stream (LM Studio reports an overflow this way, vLLM some errors).
            overflow = context_overflow(exc.body) or context_overflow(exc.message)
            if overflow is not None:
                raise _overflow_error(error_text(exc.body, exc.message), None, overflow) from exc
            raise LLMError(f"the model stream reported an error: {exc.message}", retryable=True) from exc
        except json.JSONDecodeError as exc:
            raise LLMError("the model stream sent a malformed chunk", retryable=True) from exc
        except Exception as exc:
            # Some SDK versions let the HTTP library's own errors escape while a stream is read.
            if not type(exc).__module__.startswith("httpx"):
                raise
            if "Timeout" in type(exc).__name__:
                raise self._stalled() from exc
            broke = LLMError(f"connection to {self.config.base_url} failed or broke mid-reply", retryable=True)
            raise unreachable(self.config.base_url, exc) or broke from exc
        reply.tool_calls = [calls[i] for i in sorted(calls)]
        for index, call in zip(sorted(calls), reply.tool_calls):
            if not call.id:
                call.id = f"call_{index}"
        if not reply.finish_reason:
            if not received:
                raise EmptyStreamError("the endpoint answered with an empty stream", retryable=True)
            raise LLMError("the model stream ended before the reply was complete", retryable=True)
        return reply

    async def _plain_once(
        self, payload: bytes, sent: list[str], on_text: DeltaCallback | None, on_thinking: DeltaCallback | None
    ) -> Reply:
        """The request without streaming: one JSON completion, told through the callbacks at once."""
        import openai

        try:
            data = await self._client().post(
                "/chat/completions",
                cast_to=object,
                content=payload,
                options={"headers": {"Content-Type": "application/json"}},
            )
        except openai.APIStatusError as exc:
            raise _status_error(exc, sent, bool(self.config.api_key)) from exc
        except openai.APITimeoutError as exc:
            raise self._stalled() from exc
        except openai.APIConnectionError as exc:
            broken = ConnectionBroke(f"connection to {self.config.base_url} failed", retryable=True)
            raise unreachable(self.config.base_url, exc) or broken from exc
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise LLMError("the endpoint answered a completion without choices", retryable=True)
        message = choices[0].get("message") or {}
        reply = Reply(
            content=str(message.get("content") or ""),
            reasoning=str(message.get("reasoning_content") or message.get("reasoning") or ""),
            finish_reason=str(choices[0].get("finish_reason") or "stop"),
        )
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            reply.tool_calls.append(
                ToolCallRequest(
                    id=str(call.get("id") or f"call_{index}"),
                    name=str(function.get("name") or ""),
                    arguments=str(function.get("arguments") or ""),
                )
            )
        if isinstance(data.get("usage"), dict):
            reply.usage = _usage(data["usage"])
        if reply.reasoning and on_thinking:
            on_thinking(reply.reasoning)
        if reply.content and on_text:
            on_text(reply.content)
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


def _optional_fields(body: dict[str, Any]) -> list[str]:
    """The fields of a request an endpoint may refuse (llm/endpoint.py), as sent."""
    sent = [name for name in (*OPTIONAL_FIELDS, *MAX_TOKENS_FIELDS) if name in body]
    if any("reasoning_content" in m for m in body.get("messages") or []):
        sent.append("reasoning_content")
    return sent


MEDIA_PART_TYPES = ("image_url", "video_url")
MEDIA_NOT_SENT = "[{kind} not sent: this model takes no images at this endpoint]"


def _carries_media(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") in MEDIA_PART_TYPES for part in content
    )


def _without_media(message: dict[str, Any]) -> dict[str, Any]:
    """The message with each image or video part replaced by a line saying it was not sent."""
    parts = []
    for part in message["content"]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in MEDIA_PART_TYPES:
            part = {"type": "text", "text": MEDIA_NOT_SENT.format(kind="image" if kind == "image_url" else "video")}
        parts.append(part)
    return {**message, "content": parts}


def _without_reasoning(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != "reasoning_content"}


def _overflow_error(detail: str, status: int | None, overflow: Any) -> ContextOverflowError:
    return ContextOverflowError(
        f"the conversation exceeded the model's context ({detail})",
        status=status,
        limit=overflow.limit,
        prompt_tokens=overflow.prompt_tokens,
    )


def _status_error(exc: Any, sent: list[str], keyed: bool = True) -> LLMError:
    status: int = exc.status_code
    body = _error_body(exc)
    detail = _error_detail(exc, body)
    if status in (401, 403):
        if not keyed:
            return AuthError(
                f"the endpoint wants an API key ({status}: {detail}); set KIMI_API_KEY or api_key in config.toml",
                status=status,
            )
        return AuthError(
            f"the API rejected the key ({status}: {detail}); check KIMI_API_KEY or api_key in config.toml",
            status=status,
        )
    overflow = context_overflow(body)
    if overflow is not None and status != 429:
        return _overflow_error(detail, status, overflow)
    if status != 429 and images_refused(body):  # (llama.cpp answered it 500: not a failure to retry)
        err = LLMError(f"the model endpoint answered {status}: {detail}", status=status)
        err.images_refused = True
        return err
    if status == 429 or status >= 500 or status == 408:
        err = LLMError(f"the model endpoint answered {status}: {detail}", status=status, retryable=True)
        err.retry_after = _retry_after(exc)
        return err
    err = LLMError(f"the model endpoint answered {status}: {detail}", status=status)
    err.rejected = rejected_fields(status, body, sent)
    return err


def _error_body(exc: Any) -> Any:
    """The error body as the endpoint sent it (the SDK unwraps ``{"error": ...}``; the raw text is kept)."""
    response = getattr(exc, "response", None)
    try:
        text = response.text if response is not None else ""
    except Exception:  # a streamed response whose body was not read
        text = ""
    if text:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return getattr(exc, "body", None)


def _error_detail(exc: Any, body: Any) -> str:
    fallback = str(getattr(exc, "message", exc)).splitlines()[0][:300]
    return error_text(body, fallback)[:600]


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
