"""``GET /models``: the models an endpoint serves, each one's context window where the server says it,
and which server it is.

Servers put the window in different places: ``context_length`` (Moonshot, OpenRouter, Together),
``max_model_len`` (vLLM, SGLang), ``context_window`` (Groq), ``max_context_length`` (Mistral),
``meta.n_ctx_train`` (llama.cpp's server: the trained size, an upper bound of what it was started with),
``loaded_context_length`` (LM Studio's own model list). Plain urllib: no SDK import for one GET.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from kimicode import jsontext
from kimicode.llm.endpoint import EndpointProfile, normalize

MODELS_TIMEOUT_S = 5.0
# Where each server puts the window, most specific first.
_WINDOW_FIELDS: tuple[tuple[str, ...], ...] = (
    ("loaded_context_length",),
    ("max_model_len",),
    ("context_length",),
    ("context_window",),
    ("max_context_length",),
    ("meta", "n_ctx_train"),
    ("metadata", "context_length"),
    ("top_provider", "context_length"),
)
# owned_by values that name the server software.
_OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "moonshot": "moonshot"}


class ModelsError(Exception):
    """GET /models failed; the message is one line for the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_window: int | None = None
    owned_by: str = ""
    # False when the window is only an upper bound (llama.cpp reports the size the model was trained
    # for, not the one the server was started with).
    window_exact: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "context_window": self.context_window, "owned_by": self.owned_by}


def _dig(entry: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = entry
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def parse_models(body: Any) -> list[ModelInfo]:
    """The entries of an OpenAI-style model list (``{"data": [...]}``; llama.cpp adds ``models``)."""
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return []
    models: list[ModelInfo] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        window, exact = None, True
        for path in _WINDOW_FIELDS:
            value = _dig(entry, path)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                window, exact = value, path[-1] != "n_ctx_train"
                break
        owner = entry.get("owned_by")
        models.append(ModelInfo(entry["id"], window, owner if isinstance(owner, str) else "", exact))
    return models


def server_of(models: list[ModelInfo]) -> str:
    """The server software a model list names ("vllm", "llama.cpp" …), or ""."""
    for model in models:
        server = _OWNERS.get(model.owned_by.lower())
        if server:
            return server
    return ""


def find_model(models: list[ModelInfo], name: str) -> ModelInfo | None:
    """The listed model called ``name`` (exactly, else ignoring case and a ``org/`` prefix)."""
    for model in models:
        if model.id == name:
            return model
    wanted = name.rsplit("/", 1)[-1].lower()
    for model in models:
        if model.id.rsplit("/", 1)[-1].lower() == wanted:
            return model
    return None


def fetch_models(base_url: str, api_key: str = "", timeout: float = MODELS_TIMEOUT_S) -> list[ModelInfo]:
    """GET {base_url}/models. ModelsError (with the status) when the endpoint answers an error or none."""
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = f"{normalize(base_url)}/models"
    try:
        request = urllib.request.Request(url, headers=headers)  # (a URL of no known type: ValueError)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise ModelsError(f"{url} answered {exc.code}", exc.code) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelsError(f"cannot reach {url} ({reason})") from exc
    try:
        body = jsontext.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelsError(f"{url} did not answer a JSON model list") from exc
    return parse_models(body)


def teach(endpoint: EndpointProfile, models: list[ModelInfo]) -> None:
    """Keep what a model list says about the endpoint: its server, each model's window, when it was asked."""
    endpoint.models_checked = time.time()
    endpoint.dirty = True
    endpoint.learn_server(server_of(models))
    for model in models:
        if model.context_window:
            endpoint.learn_window(model.id, model.context_window, model.window_exact)


# The lists already asked for, per endpoint, for this process (/model asks once per endpoint); an endpoint
# that answered it has no list (404, 405, 501) is remembered as such, an unreachable one is asked again.
_LISTED: dict[tuple[str, str], list[ModelInfo] | ModelsError] = {}
NO_LIST_STATUSES = (404, 405, 501)


def cached_models(base_url: str, api_key: str = "", timeout: float = MODELS_TIMEOUT_S) -> list[ModelInfo]:
    """``fetch_models``, asked once per endpoint (and key) in this process; ModelsError as it raises."""
    key = (normalize(base_url), api_key)
    known = _LISTED.get(key)
    if isinstance(known, ModelsError):
        raise known
    if known is not None:
        return known
    try:
        models = fetch_models(base_url, api_key, timeout)
    except ModelsError as exc:
        if exc.status in NO_LIST_STATUSES:
            _LISTED[key] = exc
        raise
    _LISTED[key] = models
    return models
