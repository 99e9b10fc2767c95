"""GET /models asked while a one-shot run is still loading, instead of after, before its first request.

A server on this machine is asked for its model list every run (llm/endpoint.py says why), and the client
asks before it builds its first request (llm/client.py). Loading the run's modules takes longer than the
answer; the ask itself is mostly waiting for the server, which a thread can do while the main thread loads.
So a headless run starts the ask as soon as it knows it will send a request, and the client, when it comes
to ask, takes that answer instead of asking again.

Invariants:
- An answer is used at most once, by the first client that asks the same endpoint with the same key; a
  client for another endpoint or key asks for itself.
- The answer is what the client's own ask would have been: the same function, the same timeout; a failure
  is kept as the failure and raised where the client's own ask would raise it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from kimicode.llm.models import ModelInfo, fetch_models

PROBE_TIMEOUT_S = 3.0  # the client's own ask (ChatClient._probe_models) waits this long

_lock = threading.Lock()
_asked: dict[tuple[str, str], Future[list[ModelInfo]]] = {}


def ask_models_early(base_url: str, api_key: str) -> None:
    """Start GET {base_url}/models in a thread; ``take_models`` hands its answer to the client."""
    answer: Future[list[ModelInfo]] = Future()
    with _lock:
        if (base_url, api_key) in _asked:
            return
        _asked[(base_url, api_key)] = answer

    def ask() -> None:
        try:
            answer.set_result(fetch_models(base_url, api_key, PROBE_TIMEOUT_S))
        except BaseException as exc:  # noqa: BLE001 - kept for the client, which raises it where it always did
            answer.set_exception(exc)

    threading.Thread(target=ask, name="models-probe", daemon=True).start()


def take_models(base_url: str, api_key: str) -> Future[list[ModelInfo]] | None:
    """The answer asked early for this endpoint and key, once; None when none was asked."""
    with _lock:
        return _asked.pop((base_url, api_key), None)
