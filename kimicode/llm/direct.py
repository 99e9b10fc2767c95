"""The streamed chat request sent with the request the SDK built once for its client.

The openai SDK's ``post`` builds every request anew: typed options (pydantic), two copies of them, the
headers merged and validated, the URL parsed four times, a response wrapper. That is ~0.2 ms of CPU per
request, paid on every step of a session for a request whose URL and headers never change. So the SDK builds
the chat request once per client (``_build_request``: its headers, auth, URL and timeout exactly as it would
send them), and each request is that request with the step's body, sent through the SDK's own send hook
(``_send_request``: its auth and transport) and its failures mapped as the SDK's ``request`` maps them (status
errors made by the SDK from the response it read).

Invariants:
- The bytes on the wire (request line, headers in their order, body) are those the SDK's ``post`` sends
  (tests/test_llm_direct.py compares them).
- Anything that makes the SDK's requests differ from one to the next sends through ``post`` as before: a
  client with an auth provider, a provider runtime, workload identity, custom auth or an idempotency header,
  an SDK without the methods used here (older versions), and a connection whose server set cookies (the
  SDK's HTTP client adds them per request).
- ``openai`` is imported inside the functions (kimicode --help must not load it).
"""

from __future__ import annotations

import weakref
from typing import Any

CHAT_PATH = "/chat/completions"
JSON_HEADERS = {"Content-Type": "application/json"}

# Per SDK client: its chat request as a template, or None where the SDK's own post must be used.
_templates: weakref.WeakKeyDictionary[Any, Template | None] = weakref.WeakKeyDictionary()


class Template:
    """The SDK's chat request for one client, without a body, and how the SDK maps the failures of sending it."""

    __slots__ = ("request_type", "url", "headers", "extensions", "timeouts", "failures", "statuses")

    def __init__(self, built: Any, timeouts: tuple[type[BaseException], ...], failures: tuple[type[BaseException], ...],
                 statuses: tuple[type[BaseException], ...]) -> None:
        self.request_type = type(built)
        self.url = built.url
        # (the body's length is set per request, where the SDK's HTTP library sets it: after every other header)
        self.headers = [(name, value) for name, value in built.headers.raw if name.lower() != b"content-length"]
        self.extensions = built.extensions
        self.timeouts, self.failures, self.statuses = timeouts, failures, statuses

    def request(self, payload: bytes) -> Any:
        return self.request_type("POST", self.url, headers=self.headers, content=payload, extensions=dict(self.extensions))


def template_for(sdk: Any) -> Template | None:
    """The client's template, made the first time (None: this client's requests go through the SDK's post)."""
    try:
        return _templates[sdk]
    except KeyError:
        pass
    template = _make_template(sdk)
    _templates[sdk] = template
    return template


def _make_template(sdk: Any) -> Template | None:
    try:
        from openai._httpx2 import request_exceptions, status_exceptions, timeout_exceptions
        from openai._models import FinalRequestOptions
    except ImportError:  # (an SDK older than the one these names were read from)
        return None
    plain = all(getattr(sdk, name, None) is None for name in (
        "_api_key_provider", "_provider_runtime", "_workload_identity_auth", "custom_auth", "_idempotency_header"
    ))
    hooks = all(callable(getattr(sdk, name, None)) for name in (
        "_build_request", "_send_request", "_make_status_error_from_response"
    )) and hasattr(getattr(sdk, "_client", None), "cookies")
    if not (plain and hooks):
        return None
    options = FinalRequestOptions.construct(method="post", url=CHAT_PATH, content=b"", headers=JSON_HEADERS)
    built = sdk._build_request(options)
    return Template(built, timeout_exceptions(), request_exceptions(), status_exceptions())


async def open_stream(sdk: Any, payload: bytes, stream_cls: type) -> Any:
    """The response to the streamed chat request with ``payload``, its status found good; raises what the
    SDK's ``post`` raises."""
    import openai

    template = template_for(sdk)
    if template is None or sdk._client.cookies:
        raw = await sdk.post(
            CHAT_PATH, cast_to=object, content=payload, options={"headers": JSON_HEADERS}, stream=True, stream_cls=stream_cls
        )
        return raw.response
    request = template.request(payload)
    try:
        response = await sdk._send_request(request, stream=True)
    except template.timeouts as exc:
        raise openai.APITimeoutError(request=request) from exc
    except openai.OpenAIError:
        raise
    except template.failures as exc:
        raise openai.APIConnectionError(request=request) from exc
    try:
        response.raise_for_status()
    except template.statuses:
        if not response.is_closed:
            await response.aread()
        raise sdk._make_status_error_from_response(response) from None
    return response
