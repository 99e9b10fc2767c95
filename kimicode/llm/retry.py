"""Attempts at one request until it is answered, fails for good, or runs out of time.

Invariants:
- One deadline, ``request_timeout`` after the first attempt starts, bounds every attempt and every wait;
  a retry whose wait would pass it is not made.
- An error not marked ``retryable`` is raised at once; a retryable one is retried at most ``max_retries``
  times, each after a back-off (the endpoint's ``Retry-After`` when it sent one) told to ``on_retry``.
- An endpoint that cannot be reached at all gets a few quick, silent retries (a server still starting),
  within CONNECT_RETRY_BUDGET seconds, and then one line that says what to check.
- A stream that came back empty is asked once more unstreamed (never twice); a connection error on that
  first unstreamed attempt is retried at once without a word (the server may have dropped the
  connection the empty stream came on).
- The request's bytes are the same on every attempt.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kimicode.llm.errors import LLMError
from kimicode.llm.reach import CONNECT_RETRIES, CONNECT_RETRY_BUDGET, CONNECT_RETRY_DELAY, EndpointUnreachable
from kimicode.llm.reply import Reply, RetryCallback
from kimicode.llm.request import encode_unstreamed
from kimicode.llm.transport import ConnectionBroke, EmptyStreamError

if TYPE_CHECKING:
    from kimicode.config import Config

# One attempt: given None it sends the streamed request; given bytes it sends those (the request unstreamed).
Attempt = Callable[[bytes | None], Awaitable[Reply]]


async def with_retries(body: dict[str, Any], attempt: Attempt, config: Config, on_retry: RetryCallback | None) -> Reply:
    """The reply to ``body``, through as many attempts as the invariants above allow."""
    limit = config.request_timeout
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + limit
    tries = 0
    last_problem = ""
    plain: bytes | None = None  # the same request unstreamed, once a stream came back empty
    stale_connection_retry = False
    while True:
        deadline_cm = asyncio.timeout_at(deadline)
        try:
            async with deadline_cm:
                return await attempt(plain)
        except EmptyStreamError:
            if plain is not None:
                raise
            # Some servers fail a streamed request with an empty 200 (llama-cpp-python on a prompt over
            # its window); asked once without streaming they answer the error, or the reply.
            plain = encode_unstreamed(body)
            stale_connection_retry = True
        except TimeoutError:
            if not deadline_cm.expired():
                raise
            problem = f"; last problem: {last_problem}" if last_problem else ""
            raise LLMError(
                f"gave up after {limit:g} s (request_timeout) without a complete reply from the model{problem}"
            ) from None
        except EndpointUnreachable as err:
            # Not overload: a few quick, silent retries (a server still starting), then one line.
            delay = CONNECT_RETRY_DELAY * 2**tries
            if tries >= min(CONNECT_RETRIES, config.max_retries) or (
                loop.time() + delay - started > CONNECT_RETRY_BUDGET
            ):
                made = f"{tries + 1} attempt{'s' * (tries > 0)}"
                raise EndpointUnreachable(
                    f"{err.message} ({made}); check the endpoint's URL (KIMI_BASE_URL, --base-url) and that "
                    "its server is running",
                ) from err
            tries += 1
            await asyncio.sleep(delay)
        except LLMError as err:
            if plain is not None and stale_connection_retry and isinstance(err, ConnectionBroke):
                stale_connection_retry = False
                continue
            if not err.retryable or tries >= config.max_retries:
                if err.retryable:
                    raise LLMError(f"{err.message} (gave up after {tries + 1} attempts)", status=err.status) from err
                raise
            last_problem = err.message
            delay = backoff(config.retry_base_delay, tries, err.retry_after)
            if loop.time() + delay >= deadline:
                raise LLMError(
                    f"{err.message} (gave up after {loop.time() - started:.0f} s: a retry in {delay:.1f} s "
                    f"would pass the {limit:g} s request_timeout)",
                    status=err.status,
                ) from err
            tries += 1
            if on_retry:
                on_retry(err.message, delay)
            await asyncio.sleep(delay)


def backoff(base_delay: float, tries: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: what the endpoint asked for (up to 2 min), else doubling with jitter."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), 120.0)
    base = base_delay * (2**tries)
    return min(base, 30.0) * (0.5 + random.random() / 2)
