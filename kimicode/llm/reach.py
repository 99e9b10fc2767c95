"""Whether the endpoint can be reached at all: a base URL that is not one, and a connection that cannot be
made (refused, a name that does not resolve, a TLS handshake that fails), told in words.

Such failures are not overload: the server is not there, or is not the server the URL says. Retrying them
for long only hides the message, so they get a few quick retries (a server still starting, a resolver
hiccup) and then one line saying what failed.
"""

from __future__ import annotations

import re
import socket
import ssl
from urllib.parse import urlsplit

from kimicode.llm.errors import LLMError

# Retries after the first failed connection, the pause before the first of them (doubled after each), and
# the time all attempts may take together: a refused port is known as such in milliseconds.
CONNECT_RETRIES = 2
CONNECT_RETRY_DELAY = 0.5
CONNECT_RETRY_BUDGET = 3.0


class EndpointUnreachable(LLMError):
    """No connection to the endpoint could be made (DESIGN.md B.13: ``error_kind: "connection"``)."""

    kind = "connection"


def base_url_problem(url: str) -> str:
    """What is wrong with ``url`` as an endpoint's base URL ("" when nothing is): it must be an http(s) URL
    with a host."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"it cannot be read as a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        if not parts.scheme or not parts.netloc:
            return "it has no http:// or https:// in front"
        return f"its scheme is {parts.scheme!r}, not http or https"
    if not parts.hostname:
        return "it names no host"
    return ""


def base_url_line(url: str, problem: str, from_flag: bool) -> str:
    """One line for a base URL that is not one: what is wrong, and where to set it."""
    where = "--base-url" if from_flag else "KIMI_BASE_URL, --base-url or base_url in config.toml"
    return (
        f"the base URL {url!r} is not usable: {problem}; set {where} to the endpoint's http:// or https:// URL, "
        "e.g. https://api.moonshot.ai/v1 or http://127.0.0.1:8000/v1"
    )


def unreachable_reason(exc: BaseException) -> str:
    """Why no connection could be made, in words, from the chain of errors the HTTP library raised ("" when
    the chain holds none of these causes: a connection that broke mid-reply is another matter)."""
    chain: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop(0)
        if any(error is known for known in chain):
            continue
        chain.append(error)
        pending += [e for e in (error.__cause__, error.__context__) if e is not None]
        pending += list(getattr(error, "exceptions", ()) or ())  # an ExceptionGroup of attempts
    # (httpx and httpcore raise a ConnectError while connecting; a TLS error later is a broken reply)
    connecting = any(type(error).__name__ == "ConnectError" for error in chain)
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, socket.gaierror):
            return "name not resolved"
        if isinstance(error, ssl.SSLCertVerificationError) and connecting:
            return f"TLS certificate not accepted ({error.verify_message or _ssl_text(error)})"
        if isinstance(error, ssl.SSLError) and connecting:
            return f"TLS handshake failed ({_ssl_text(error)})"
    return ""


def unreachable(base_url: str, exc: BaseException) -> EndpointUnreachable | None:
    """The error to raise for ``exc`` when it means the endpoint cannot be reached, else None."""
    reason = unreachable_reason(exc)
    if not reason:
        return None
    if reason == "name not resolved":
        reason += f" ({urlsplit(base_url).hostname})"
    return EndpointUnreachable(f"cannot connect to {base_url}: {reason}", retryable=True)


def _ssl_text(error: ssl.SSLError) -> str:
    """"[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" → "wrong version number"."""
    text = str(error.args[1] if len(error.args) > 1 else error)
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    return re.sub(r"\s*\(_ssl\.c:\d+\)$", "", text) or type(error).__name__
