"""One attempt at a request over HTTP (through the openai SDK's low-level ``post``), and what its failures mean.

Invariants:
- Every failure leaves as an ``LLMError`` (or a subclass) that says in one line what went wrong; those
  worth another attempt are marked ``retryable``, and nothing here retries (llm/retry.py does).
- A 401/403 is an ``AuthError``; an overflow the endpoint states is a ``ContextOverflowError`` (with the
  window, when stated); a refusal of images is marked ``images_refused``, of optional fields ``rejected``.
- A stream counts as a reply only once a choice finished; one that carried no event at all is an
  ``EmptyStreamError`` (the caller may ask the same request unstreamed).
- The payload is sent as given: these functions never build or change a request.
- ``openai`` is imported inside the functions (kimicode --help must not load it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kimicode import jsontext
from kimicode.llm.direct import open_stream
from kimicode.llm.errors import (
    AuthError,
    ContextOverflowError,
    LLMError,
    context_overflow,
    error_text,
    images_refused,
    rejected_fields,
)
from kimicode.llm.reach import unreachable
from kimicode.llm.reply import (
    ChunkCallback,
    DeltaCallback,
    Reply,
    ToolCallRequest,
    absorb,
    completion_reply,
    gather_calls,
)
from kimicode.llm.sse import DONE, EventSplitter, MalformedChunk, StreamErrorEvent, chunk_of

if TYPE_CHECKING:
    from kimicode.config import Config

# Takes the closing of a response whose reply is whole, to run it after the reply was handed over.
CloseLater = Callable[[Coroutine[Any, Any, None]], None]


class EmptyStreamError(LLMError):
    """A 200 stream that carried no event at all."""


class ConnectionBroke(LLMError):
    """The connection failed before an unstreamed answer came."""


async def stream_once(
    sdk: Any,
    config: Config,
    payload: bytes,
    sent: list[str],
    on_text: DeltaCallback | None,
    on_thinking: DeltaCallback | None,
    on_chunk: ChunkCallback | None,
    close_later: CloseLater | None = None,
) -> Reply:
    """The streamed request once: its deltas through the callbacks as they come, then the whole reply.

    The SDK's request is sent (llm/direct.py) and its status errors mapped as the SDK maps them; the events
    are read from the response's bytes here (llm/sse.py), as they arrive. Once ``[DONE]`` made the reply whole, reading the end of the body and
    closing the response is handed to ``close_later`` (when given), so the reply need not wait for it."""
    import openai

    reply = Reply()
    calls: dict[int, ToolCallRequest] = {}
    received = 0

    def broke() -> LLMError:
        return LLMError(f"connection to {config.base_url} failed or broke mid-reply", retryable=True)

    try:
        with sdk_failures(config, sent, broke):
            response = await open_stream(sdk, payload, raw_stream_class())
        handed_over = False
        try:
            splitter = EventSplitter()
            reads = response.aiter_bytes()
            done = False
            async for data in reads:
                for event, text in splitter.feed(data):
                    if text.startswith(DONE):
                        done = True
                        break
                    chunk = chunk_of(event, text)
                    received += 1
                    if on_chunk is not None and isinstance(chunk, dict):
                        on_chunk(chunk)
                    absorb(chunk, reply, calls, on_text, on_thinking)
                if done:
                    if close_later is None:
                        await drain(reads)
                    else:
                        close_later(finish(reads, response))
                        handed_over = True
                    break
        finally:
            if not handed_over:
                await response.aclose()
    except LLMError:
        raise  # (already what it means: mapped by sdk_failures, or raised while a chunk was read)
    except StreamErrorEvent as exc:
        # An error event inside a 200 stream (LM Studio reports an overflow this way, vLLM some errors).
        overflow = context_overflow(exc.body) or context_overflow(exc.message)
        if overflow is not None:
            raise overflow_error(error_text(exc.body, exc.message), None, overflow) from exc
        raise LLMError(f"the model stream reported an error: {exc.message}", retryable=True) from exc
    except MalformedChunk as exc:
        raise LLMError("the model stream sent a malformed chunk", retryable=True) from exc
    except openai.APIError as exc:
        raise LLMError(f"the model stream reported an error: {exc.message}", retryable=True) from exc
    except Exception as exc:
        # The HTTP library's own errors while the stream is read (the SDK maps only those of the request).
        if not type(exc).__module__.startswith("httpx"):
            raise
        if "Timeout" in type(exc).__name__:
            raise stalled(config) from exc
        raise unreachable(config.base_url, exc) or broke() from exc
    gather_calls(reply, calls)
    if not reply.finish_reason:
        if not received:
            raise EmptyStreamError("the endpoint answered with an empty stream", retryable=True)
        raise LLMError("the model stream ended before the reply was complete", retryable=True)
    return reply


# After [DONE], what is left of the body (the end of the chunked encoding) is read so the connection can carry
# the next request; a server that keeps sending after it is given this long, then the connection is closed.
DRAIN_LIMIT = 0.1


async def drain(reads: AsyncIterator[bytes]) -> None:
    with contextlib.suppress(Exception):  # noqa: BLE001 - the reply is whole: a failure now only costs the connection
        async with asyncio.timeout(DRAIN_LIMIT):
            async for _ in reads:
                pass


async def finish(reads: AsyncIterator[bytes], response: Any) -> None:
    """The rest of a whole reply's body read, and its response closed (its connection free for the next)."""
    try:
        # This task was made before the reply's tool calls' tasks, so its first step runs first: yielding once
        # lets a call run up to its first wait (a command started), and this reading happens meanwhile.
        await asyncio.sleep(0)
        await drain(reads)
    finally:
        with contextlib.suppress(Exception):  # noqa: BLE001 - no one is left to tell: the reply was handed over
            await response.aclose()


@functools.cache
def raw_stream_class() -> type:
    """The stream class handed to the SDK's ``post``: it keeps the SDK's response and reads nothing (the SDK
    calls it with the response once the status was found good)."""
    from openai import AsyncStream

    class RawStream(AsyncStream[object]):
        def __init__(self, *, response: Any, **_: Any) -> None:  # (no super: it would start a reader)
            self.response = response

    return RawStream


async def plain_once(
    sdk: Any,
    config: Config,
    payload: bytes,
    sent: list[str],
    on_text: DeltaCallback | None,
    on_thinking: DeltaCallback | None,
) -> Reply:
    """The request without streaming: one JSON completion, told through the callbacks at once."""

    def broke() -> LLMError:
        return ConnectionBroke(f"connection to {config.base_url} failed", retryable=True)

    try:
        with sdk_failures(config, sent, broke):
            data = await sdk.post(
                "/chat/completions",
                cast_to=object,
                content=payload,
                options={"headers": {"Content-Type": "application/json"}},
            )
    except (ValueError, RecursionError) as exc:  # the SDK's reading of a 200 body: not JSON, or nested past the stack
        raise LLMError("the model endpoint answered with a body that is not a JSON completion", retryable=True) from exc
    return completion_reply(data, on_text, on_thinking)


@contextmanager
def sdk_failures(config: Config, sent: list[str], broke: Callable[[], LLMError]) -> Iterator[None]:
    """The SDK's status, timeout and connection errors as what they mean; ``broke`` is the error for a
    connection that failed while the endpoint is reachable (the two calls word it differently)."""
    import openai

    try:
        yield
    except openai.APIStatusError as exc:
        raise status_error(exc, sent, bool(config.api_key)) from exc
    except openai.APITimeoutError as exc:  # (a kind of APIConnectionError: tested first)
        raise stalled(config) from exc
    except openai.APIConnectionError as exc:
        raise unreachable(config.base_url, exc) or broke() from exc


def stalled(config: Config) -> LLMError:
    return LLMError(f"no data from the endpoint for {config.stream_stall_timeout:g} s", retryable=True)


def overflow_error(detail: str, status: int | None, overflow: Any) -> ContextOverflowError:
    return ContextOverflowError(
        f"the conversation exceeded the model's context ({detail})",
        status=status,
        limit=overflow.limit,
        prompt_tokens=overflow.prompt_tokens,
    )


def status_error(exc: Any, sent: list[str], keyed: bool = True) -> LLMError:
    """What an HTTP error status means, given the optional fields the request ``sent``."""
    status: int = exc.status_code
    body = error_body(exc)
    detail = error_detail(exc, body)
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
        return overflow_error(detail, status, overflow)
    if status != 429 and images_refused(body):  # (llama.cpp answered it 500: not a failure to retry)
        err = LLMError(f"the model endpoint answered {status}: {detail}", status=status)
        err.images_refused = True
        return err
    if status == 429 or status >= 500 or status == 408:
        err = LLMError(f"the model endpoint answered {status}: {detail}", status=status, retryable=True)
        err.retry_after = retry_after(exc)
        return err
    err = LLMError(f"the model endpoint answered {status}: {detail}", status=status)
    err.rejected = rejected_fields(status, body, sent)
    return err


def error_body(exc: Any) -> Any:
    """The error body as the endpoint sent it (the SDK unwraps ``{"error": ...}``; the raw text is kept)."""
    response = getattr(exc, "response", None)
    try:
        text = response.text if response is not None else ""
    except Exception:  # noqa: BLE001 - a streamed response whose body was not read: the SDK's own body then
        text = ""
    if text:
        try:
            return jsontext.loads(text)
        except ValueError:  # (not JSON, nested past the parser's stack included: the text it is)
            return text
    return getattr(exc, "body", None)


def error_detail(exc: Any, body: Any) -> str:
    fallback = str(getattr(exc, "message", exc)).splitlines()[0][:300]
    return error_text(body, fallback)[:600]


def retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
