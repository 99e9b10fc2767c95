"""What kimicode knows about an endpoint (a base URL): which optional request fields it takes, which
max-tokens field it honours, how thinking is switched there, each model's context window, and which models
take no images there.

Some facts are known up front (Moonshot's API takes ``thinking`` and ``prompt_cache_key``; OpenAI wants
``max_completion_tokens``); the rest is learned while kimicode talks to the endpoint — a 400 that names a
field it does not take, a context window stated by ``GET /models`` or by an overflow error, a model that
refuses images — and kept per
base URL in ``KIMICODE_HOME/endpoints.json`` so the next run starts from it. The file is a cache: when it
is unreadable it is ignored (with one line saying so) and rewritten.

``endpoints.json``::

    {"version": 1, "endpoints": {"http://127.0.0.1:8080/v1": {
        "rejected": ["prompt_cache_key", "thinking"], "max_tokens_field": "max_tokens",
        "server": "llama.cpp", "windows": {"kimi-k2.5": 8192}, "no_images": ["kimi-k2.5"],
        "updated": 1767225600}}}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kimicode.jsonfile import write_json_atomic

ENDPOINTS_FILE = "endpoints.json"

# Optional fields a request may carry. Any of them an endpoint rejects is dropped from then on.
# (``reasoning_content`` lives on assistant messages, not at the top level.)
THINKING_FIELDS = ("thinking", "chat_template_kwargs")
OPTIONAL_FIELDS = (
    *THINKING_FIELDS,
    "prompt_cache_key",
    "stream_options",
    "temperature",
    "top_p",
    "reasoning_content",
)
MAX_TOKENS_FIELDS = ("max_completion_tokens", "max_tokens")

MOONSHOT_HOSTS = ("api.moonshot.ai", "api.moonshot.cn")
OPENAI_HOSTS = ("api.openai.com",)
# Servers whose chat templates read chat_template_kwargs.thinking for Kimi models (DESIGN.md B.7).
CHAT_TEMPLATE_SERVERS = ("vllm", "sglang")


MODELS_RECHECK_S = 24 * 3600
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def is_loopback(base_url: str) -> bool:
    """Is the endpoint a server on this machine (which needs no key)?"""
    host = host_of(base_url)
    return host in LOOPBACK_HOSTS or host.startswith("127.") or host.endswith(".localhost")


def keyless_ok(base_url: str, users_choice: str) -> bool:
    """May a run go without a key? Only for a server on this machine that the user chose (flag,
    KIMI_BASE_URL or their own config.toml): a repository naming one does not make a key unnecessary."""
    return is_loopback(base_url) and normalize(base_url) == normalize(users_choice)


def normalize(base_url: str) -> str:
    return base_url.strip().rstrip("/")


def host_of(base_url: str) -> str:
    return (urlsplit(normalize(base_url)).hostname or "").lower()


def vendor_of(base_url: str) -> str:
    """"moonshot", "openai" or "other": the endpoints whose fields are known without asking."""
    host = host_of(base_url)
    if host in MOONSHOT_HOSTS:
        return "moonshot"
    if host in OPENAI_HOSTS:
        return "openai"
    return "other"


@dataclass
class EndpointProfile:
    base_url: str
    vendor: str = "other"
    # What the server said it is, from GET /models ("vllm", "llama.cpp", "ollama" …); "" when unknown.
    server: str = ""
    # Fields this endpoint refused (learned); never sent again.
    rejected: set[str] = field(default_factory=set)
    # The max-tokens field it honours; "" = the vendor's default.
    learned_max_tokens_field: str = ""
    # Context windows by model, learned from GET /models or an overflow error.
    windows: dict[str, int] = field(default_factory=dict)
    # Models that refused images here (a llama.cpp server without its projector, a text-only model).
    no_images: set[str] = field(default_factory=set)
    # When GET /models was last asked (time.time()); 0 = never.
    models_checked: float = 0.0
    # Set when a learned fact changed, so the store knows there is something to write.
    dirty: bool = False

    @property
    def kind(self) -> str:
        """The vendor whose rules apply: by host, or by what the server says it is (a proxy in front of
        Moonshot's API lists its models as owned by "moonshot")."""
        if self.vendor == "other" and self.server == "moonshot":
            return "moonshot"
        return self.vendor

    @property
    def max_tokens_field(self) -> str:
        if self.learned_max_tokens_field in MAX_TOKENS_FIELDS:
            return self.learned_max_tokens_field
        # OpenAI's reasoning models refuse max_tokens; Moonshot documents max_completion_tokens. Every other
        # server here takes max_tokens, and some (llama-cpp-python) silently ignore the newer name.
        return "max_completion_tokens" if self.kind in ("moonshot", "openai") else "max_tokens"

    def takes(self, name: str) -> bool:
        """May a request carry this optional field?"""
        if name in self.rejected:
            return False
        if name == "prompt_cache_key":
            return self.kind in ("moonshot", "openai")
        return True

    def thinking_style(self, configured: str) -> str:
        """How thinking is switched here: "moonshot", "chat_template" or "none"."""
        if configured in ("moonshot", "chat_template", "none"):
            style = configured
        elif self.kind == "moonshot":
            style = "moonshot"
        elif self.server in CHAT_TEMPLATE_SERVERS:
            style = "chat_template"
        else:
            style = "none"  # an unknown server gets no vendor field it may not know
        wire = {"moonshot": "thinking", "chat_template": "chat_template_kwargs"}.get(style)
        return style if wire is None or wire not in self.rejected else "none"

    def reject(self, name: str) -> bool:
        """Remember that the endpoint refused ``name``; True when that is news (worth a retry)."""
        if name in MAX_TOKENS_FIELDS:
            if self.max_tokens_field != name:
                return False
            self.learned_max_tokens_field = MAX_TOKENS_FIELDS[1 - MAX_TOKENS_FIELDS.index(name)]
        elif name in self.rejected:
            return False
        else:
            self.rejected.add(name)
        self.dirty = True
        return True

    def takes_images(self, model: str) -> bool:
        return model not in self.no_images

    def refuse_images(self, model: str) -> bool:
        """Remember that ``model`` takes no images here; True when that is news (worth a retry)."""
        if model in self.no_images:
            return False
        self.no_images.add(model)
        self.dirty = True
        return True

    def forget_no_images(self, model: str) -> None:
        """Ask again whether ``model`` takes images (verify-endpoint's image check sends one whatever was
        learned: the server may have been given its projector since)."""
        if model in self.no_images:
            self.no_images.discard(model)
            self.dirty = True

    def use_max_tokens_field(self, name: str) -> None:
        if name in MAX_TOKENS_FIELDS and self.max_tokens_field != name:
            self.learned_max_tokens_field = name
            self.dirty = True

    def learn_window(self, model: str, window: int, exact: bool = True) -> bool:
        """Keep ``window`` for ``model``. A bound that is not exact (llama.cpp's trained size) never
        replaces a smaller window the endpoint stated itself."""
        known = self.windows.get(model)
        if window <= 0 or known == window or (not exact and known is not None and known < window):
            return False
        self.windows[model] = window
        self.dirty = True
        return True

    def needs_models_probe(self) -> bool:
        """Ask GET /models before the first request? Moonshot's and OpenAI's facts are known; a server on
        this machine may have been restarted with another model or context size, so it is asked every
        run; another endpoint once a day."""
        if self.vendor != "other":
            return False
        if is_loopback(self.base_url):
            return True
        return time.time() - self.models_checked > MODELS_RECHECK_S

    def learn_server(self, server: str) -> None:
        if server and server != self.server:
            self.server = server
            self.dirty = True

    def to_json(self) -> dict[str, Any]:
        return {
            "rejected": sorted(self.rejected),
            "max_tokens_field": self.learned_max_tokens_field,
            "server": self.server,
            "windows": dict(sorted(self.windows.items())),
            "no_images": sorted(self.no_images),
            "models_checked": int(self.models_checked),
            "updated": int(time.time()),
        }


def _from_json(base_url: str, entry: dict[str, Any]) -> EndpointProfile:
    profile = EndpointProfile(base_url, vendor_of(base_url))
    rejected = entry.get("rejected")
    if isinstance(rejected, list):
        profile.rejected = {str(name) for name in rejected if str(name) in OPTIONAL_FIELDS}
    learned = entry.get("max_tokens_field")
    if learned in MAX_TOKENS_FIELDS:
        profile.learned_max_tokens_field = str(learned)
    if isinstance(entry.get("server"), str):
        profile.server = entry["server"]
    if isinstance(entry.get("models_checked"), int | float):
        profile.models_checked = float(entry["models_checked"])
    windows = entry.get("windows")
    if isinstance(windows, dict):
        profile.windows = {str(k): int(v) for k, v in windows.items() if isinstance(v, int) and v > 0}
    no_images = entry.get("no_images")
    if isinstance(no_images, list):
        profile.no_images = {name for name in no_images if isinstance(name, str)}
    return profile


class EndpointStore:
    """``KIMICODE_HOME/endpoints.json``: one entry per base URL."""

    def __init__(self, home: Path) -> None:
        self.path = home / ENDPOINTS_FILE
        # One line about an unreadable file, for the front end to show; None when all is well.
        self.problem: str | None = None

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            self.problem = f"ignoring {self.path} (cannot read it: {exc}); it will be rewritten"
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            self.problem = f"ignoring {self.path} (not valid JSON: {exc.msg} at line {exc.lineno}); it will be rewritten"
            return {}
        table = data.get("endpoints") if isinstance(data, dict) else None
        if not isinstance(table, dict):
            self.problem = f"ignoring {self.path} (no \"endpoints\" table); it will be rewritten"
            return {}
        return table

    def load(self, base_url: str) -> EndpointProfile:
        base_url = normalize(base_url)
        entry = self._read().get(base_url)
        if isinstance(entry, dict):
            try:
                return _from_json(base_url, entry)
            except (TypeError, ValueError):
                self.problem = f"ignoring the entry for {base_url} in {self.path} (malformed); it will be rewritten"
        return EndpointProfile(base_url, vendor_of(base_url))

    def save(self, profile: EndpointProfile) -> None:
        """Write this endpoint's entry, keeping the others (re-read now: another run may have written)."""
        if not profile.dirty:
            return
        table = self._read()
        table[profile.base_url] = profile.to_json()
        write_json_atomic(self.path, {"version": 1, "endpoints": table}, sort_keys=True)
        profile.dirty = False
        self.problem = None

    def save_quietly(self, profile: EndpointProfile) -> None:
        """Save, but a full disk or a read-only home only costs the learning, never the run."""
        try:
            self.save(profile)
        except OSError as exc:
            self.problem = f"could not save what was learned about {profile.base_url} to {self.path}: {exc}"
