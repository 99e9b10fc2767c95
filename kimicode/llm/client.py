"""Streaming chat-completions client for any OpenAI-compatible endpoint (Moonshot by default).

The request body is built as plain JSON (llm/request.py) and handed to the openai SDK's low-level ``post``
as bytes: the SDK's typed ``chat.completions.create`` walks every message through its params transform on
each call, which grows with the history and would dominate a long session's per-step cost.

What happens where: the body is built in request.py, one HTTP attempt and the meaning of its failures are
in transport.py, the retries and the deadline in retry.py, the reply read from the stream in reply.py.
This module holds what the client learns about its endpoint while talking to it.

Invariants:
- What the endpoint was seen to refuse (an optional field, images) or to state (its window) is learned
  once, kept in its profile, saved to the store, and every later body is built from it.
- A request refused for an optional field is sent again without it, once per field; one refused for its
  images is sent again with each image replaced by a line (this cannot repeat: the next body has none).
- Every attempt holds a slot of the endpoint's limiter (llm/limiter.py) while it runs.
- GET /models is asked at most once per client, before the first request is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Coroutine
from dataclasses import replace
from typing import Any, Unpack

from kimicode.config import Config
from kimicode.llm.endpoint import EndpointProfile, EndpointStore, vendor_of
from kimicode.llm.errors import AuthError, ContextOverflowError, LLMError
from kimicode.llm.limiter import Limiter, limiter_for
from kimicode.llm.profiles import ModelProfile
from kimicode.llm.reply import (
    ChunkCallback,
    DeltaCallback,
    Reply,
    RetryCallback,
    TokenUsage,
    ToolCallRequest,
)
from kimicode.llm.request import BodyOptions, build_body, carries_media, optional_fields
from kimicode.llm.request_cache import RequestEncoder
from kimicode.llm.retry import with_retries
from kimicode.llm.transport import plain_once, stream_once

__all__ = ["AuthError", "ChatClient", "ContextOverflowError", "LLMError", "Reply", "TokenUsage", "ToolCallRequest"]


def load_sdk() -> None:
    """Import the openai SDK now, ahead of the first request, for a caller that knows one will be made."""
    from kimicode.llm.sdk_import import import_sdk

    import_sdk()


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
        self._sdk_lock = threading.Lock()  # prepare() may run in a thread while a request wants the client
        self._preparing: asyncio.Task[None] | None = None
        self._limiter: Limiter | None = None
        self._probed = False
        self._probe_lock = asyncio.Lock()
        # The ends of streams whose replies were handed over, still being read (see _close_later).
        self._closing: set[asyncio.Task[None]] = set()
        # Model requests of this client in flight now, and the most at once (reported by swarm runs).
        self.in_flight = 0
        self.peak_in_flight = 0
        self._encoder = RequestEncoder()  # (reuses the JSON of what the last requests of each conversation sent)

    async def aclose(self) -> None:
        """Close the HTTP connections (and say so to the event loop before it closes)."""
        preparing, self._preparing = self._preparing, None
        if preparing is not None:  # a client still being made is closed too, once it is made
            with contextlib.suppress(Exception):
                await asyncio.shield(preparing)
        await self._closed()
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
        with self._sdk_lock:
            if self._sdk is None:
                from kimicode.llm.sdk_import import import_sdk
                from kimicode.llm.tls import shared_tls_context
                from kimicode.llm.wire import wire_transport

                openai = import_sdk()  # heavy: only when a request is made
                tls = shared_tls_context()

                # A plain number is the limit for each network operation: connecting, and every read of the
                # stream. So this is the stall limit (no byte for that long); the total deadline across
                # attempts is kept in complete().
                timeout = self.config.stream_stall_timeout
                self._sdk = openai.AsyncOpenAI(
                    api_key=self.config.api_key or "missing",
                    base_url=self.config.base_url,
                    max_retries=0,  # retries live here, where broken streams are retried too
                    timeout=timeout,
                    # The SDK's own default client, but with the process's TLS context (made once: llm/tls.py)
                    # and kimicode's connections (llm/wire.py; httpx's own where a proxy is to be used).
                    http_client=openai.DefaultAsyncHttpxClient(
                        base_url=self.config.base_url,
                        timeout=timeout,
                        verify=tls,
                        transport=wire_transport(openai, self.config.base_url, tls),
                    ),
                )
            return self._sdk

    async def _sdk_ready(self) -> Any:
        """The SDK's client, once the thread ready() started to make it is done; had making it failed, it is
        made here again, which raises what went wrong where it was always raised."""
        preparing, self._preparing = self._preparing, None
        if preparing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(preparing)  # a cancelled request leaves the making to finish
        return self._client()

    def build_body(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **options: Unpack[BodyOptions]) -> dict[str, Any]:
        """The request as plain JSON: only the optional fields this endpoint takes (llm/endpoint.py)."""
        return build_body(self.config, self.profile, self.endpoint, messages, tools, options)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        on_text: DeltaCallback | None = None,
        on_thinking: DeltaCallback | None = None,
        on_retry: RetryCallback | None = None,
        on_chunk: ChunkCallback | None = None,
        **options: Unpack[BodyOptions],
    ) -> Reply:
        """One model reply, streamed through the callbacks, retried on transient failures.

        A request the endpoint refuses because of an optional field it does not take is sent again once
        without that field, and the endpoint's profile remembers it; so is one refused for its images (each
        image becomes a line saying it was not sent); an overflow that states the window teaches the window
        before it is raised (the caller compacts and asks again)."""
        await self.ready()
        tried: set[str] = set()
        while True:
            body = self.build_body(messages, tools, **options)
            try:
                return await self._complete_body(body, on_text, on_thinking, on_retry, on_chunk)
            except ContextOverflowError as err:
                if err.limit:
                    self.learn_window(err.limit)
                raise
            except LLMError as err:
                if err.images_refused and any(carries_media(m) for m in body["messages"]):
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
        if self._sdk is None and self._preparing is None:
            # Its HTTP transport loads TLS certificates in C, which lets other threads run: made in a thread
            # while the endpoint is asked and the first body is built.
            self._preparing = asyncio.ensure_future(asyncio.to_thread(self.prepare))
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
        from kimicode.llm.early_models import PROBE_TIMEOUT_S, take_models
        from kimicode.llm.models import ModelsError, fetch_models, find_model, teach

        early = take_models(self.config.base_url, self.config.api_key)  # asked while the run loaded
        try:
            if early is not None:
                models = await asyncio.wrap_future(early)
            else:
                models = await asyncio.to_thread(fetch_models, self.config.base_url, self.config.api_key, PROBE_TIMEOUT_S)
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
        payload = self._encoder.encode(body)
        sent = optional_fields(body)
        await self._sdk_ready()  # making it takes a moment, which is no part of the endpoint's time

        def attempt(plain: bytes | None) -> Awaitable[Reply]:
            return self._limited_attempt(payload, sent, on_text, on_thinking, on_chunk, plain)

        return await with_retries(body, attempt, self.config, on_retry)

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
        if self._closing:
            await self._closed()  # so the connection the last reply came on carries this request
        permit = await self.limiter.acquire()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if plain is not None:
                reply = await plain_once(self._client(), self.config, plain, sent, on_text, on_thinking)
            else:
                reply = await stream_once(
                    self._client(), self.config, payload, sent, on_text, on_thinking, on_chunk, self._close_later
                )
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

    def _close_later(self, closing: Coroutine[Any, Any, None]) -> None:
        """Read the end of a whole reply's stream and close it in a task: the caller acts on the reply (runs its
        tools) meanwhile; the next request of this client, and aclose(), wait for it."""
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _closed(self) -> None:
        while self._closing:
            await asyncio.wait(set(self._closing))
