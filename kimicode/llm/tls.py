"""One TLS context per process for every model client, made once.

Loading the certificate store is ~50 ms of CPU; the SDK's default HTTP client makes a new context each time it
is built: once per process for a one-shot run, but once per task for a batch's agents. The batch's warm
process makes it before it forks (kimicode/batch/zygote.py), so each task's agent starts with it made; a
one-shot run makes it in a thread while it loads (kimicode/frontends/headless/run.py).

The context is what the SDK's HTTP stack would make by itself (the same function, so the same trust store,
including ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``); it is kept per value of those two variables, so a task whose
environment names another store gets a context of its own.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading

_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_LOCK = threading.Lock()  # the client may be made in a thread while another asks


def shared_tls_context() -> ssl.SSLContext:
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _LOCK:
        context = _CONTEXTS.get(key)
        if context is None:
            import httpx2  # the SDK's HTTP stack: its own default, made once here

            context = _CONTEXTS[key] = httpx2.create_ssl_context()
        return context


def make_tls_context_ahead() -> None:
    """Make the context now, from a thread, before the first client asks for it: loading the certificate
    store runs in C without the interpreter's lock, so it takes the other core while the caller's thread
    goes on. A store that cannot be loaded is met again, and said, when the client is made."""
    with contextlib.suppress(Exception):
        shared_tls_context()
