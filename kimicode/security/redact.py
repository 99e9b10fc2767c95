"""Secrets kimicode knows, and the one place that hides them in what it writes.

A process-wide registry is fed where secrets enter: the API key (environment or config.toml), MCP servers'
``env`` and ``headers`` values. ``redact`` replaces those values and strings shaped like credentials
(``sk-…`` keys, ``Bearer <token>``, ``Authorization: <value>``) with ``[redacted]``. It is applied once per
output channel — session records, stderr, headless stdout, model error messages, MCP logs — not in every
caller. What the model is sent is not redacted: it needs the real text of files and command output.

A registered secret is also found in the forms a tool result or a command's output can carry it in: without
its ``sk-`` prefix, base64-encoded (any alignment, either alphabet), percent-encoded (whole or in part,
either case), and split by whitespace or line breaks. The forms are computed once, at registration; plain
substring checks decide whether a (slower) pattern runs, so text without a secret costs little.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import threading
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import unquote

REDACTED = "[redacted]"
# Shorter values would redact ordinary words and numbers; real keys and tokens are longer.
MIN_SECRET_LENGTH = 12
# Environment variables that hold keys, wherever kimicode runs.
SECRET_ENV_VARS = ("KIMI_API_KEY", "MOONSHOT_API_KEY", "OPENAI_API_KEY")
# Dict keys whose values are credentials whatever they look like (config dumps, headers in records).
_SECRET_DICT_KEY = re.compile(
    r"^(api[_-]?key|authorization|proxy-authorization|x-api-key|access[_-]?token|secret|password|token)$",
    re.IGNORECASE,
)
# Env var names whose values are secrets by name; other MCP env values count only if they look like keys.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|AUTH|CREDENTIAL|COOKIE|SESSION|PRIVATE|_PAT$", re.IGNORECASE)
_TOKEN_CHARS = "A-Za-z0-9._~+/=-"

# Key shapes. The (?<!…) guard keeps "task-…" or "desk-…" from looking like an "sk-" key. A token must be
# 8+ characters with a digit in it, so "Bearer instructions" or "Authorization = config.api_key" stay.
_TOKEN = rf"(?=[{_TOKEN_CHARS}]*[0-9])[{_TOKEN_CHARS}]{{8,}}"
_SHAPES = (
    r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}",
    rf"(?P<auth>(?i:proxy-)?(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?:(?i:bearer|basic|token)\s+)?){_TOKEN}",
    rf"(?P<bearer>(?i:bearer)\s+){_TOKEN}",
)
# Text without any of these (lower-cased) and without a known secret cannot match: skip the regex. Scanning
# for a few substrings is C-speed, the alternation above is not.
_TRIGGERS = ("sk-", "bearer", "authorization")

_lock = threading.Lock()
# Replaced, never mutated: readers on other threads (sub-agents, MCP tasks) iterate stable tuples.
_known: tuple[str, ...] = ()
# Every form a registered secret can take in text (see _derived_forms), longest first: C-speed substring
# checks on them decide whether the slower pattern runs at all.
_needles: tuple[str, ...] = ()
# The secrets and their prefix-less bodies: looked for in text with percent-escapes decoded.
_bodies: tuple[str, ...] = ()
_pattern: re.Pattern[str] | None = None
# A percent-escape of a byte some registered secret has: only text with one is decoded to look further.
_escape_probe: re.Pattern[str] | None = None
# What a key split over lines or words is split by (str.translate deletes these at C speed).
_NO_WHITESPACE = dict.fromkeys(map(ord, " \t\n\r\f\v\u00a0\u2028\u2029"))


def register(value: str | None) -> None:
    """Remember ``value`` as a secret from now on, with every derived form it can take in text (computed
    once, here). Short or empty values are ignored."""
    global _known, _needles, _bodies, _escape_probe
    if not value:
        return
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH or value in _known:
        return
    with _lock:
        if value not in _known:
            # Longest first: a secret that contains another one is replaced whole.
            _known = tuple(sorted((*_known, value), key=len, reverse=True))
            bodies = [value]
            if value.startswith("sk-") and len(value) - 3 >= MIN_SECRET_LENGTH:
                bodies.append(value[3:])  # the key with its prefix stripped is the key
            forms = {form for body in bodies for form in _derived_forms(body)}
            _needles = tuple(sorted(set(_needles) | forms, key=len, reverse=True))
            _bodies = tuple(sorted({*_bodies, *bodies}, key=len, reverse=True))
            hexes = sorted({f"{byte:02x}" for body in _bodies for byte in body.encode()})
            _escape_probe = re.compile(f"%(?i:{'|'.join(hexes)})")


def _derived_forms(body: str) -> set[str]:
    """``body`` as written and base64-encoded at each of the three byte alignments (standard and URL-safe
    alphabets; only the characters that depend on ``body`` alone, so it is found inside a longer encoded
    blob). Percent-encoding is matched by decoding instead (see _percent_hits): any mix of escaped and plain
    characters is one form there."""
    forms = {body}
    raw = body.encode()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        total = pad + len(raw)
        core = encoded[(0, 2, 3)[pad] : total // 3 * 4 + total % 3]
        forms.add(core)
        forms.add(core.replace("+", "-").replace("/", "_"))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


@functools.lru_cache(maxsize=256)
def _split_pattern(form: str) -> re.Pattern[str]:
    """``form`` with whitespace (line breaks included) allowed between any two characters."""
    return re.compile(r"\s*".join(re.escape(c) for c in form))


@functools.lru_cache(maxsize=64)
def _escaped_pattern(body: str) -> re.Pattern[str]:
    """``body`` with any of its characters percent-encoded (hex in either case), whitespace allowed between."""
    return re.compile(r"\s*".join(_char_or_escape(c) for c in body))


def _char_or_escape(char: str) -> str:
    escapes = "".join(f"%(?i:{byte:02x})" for byte in char.encode())
    return f"(?:{re.escape(char)}|{escapes})"


def _redact_secrets(text: str) -> str:
    """Every form of every registered secret in ``text`` replaced. Substring checks at C speed decide what
    runs; a pattern runs only for a form that is there split by whitespace or percent-encoded."""
    needles, bodies = _needles, _bodies
    for form in needles:  # longest first: a secret that contains another one is replaced whole
        if form in text:
            text = text.replace(form, REDACTED)
    compact = text.translate(_NO_WHITESPACE)
    if len(compact) != len(text):
        for form in needles:
            if form in compact:
                text = _split_pattern(form).sub(REDACTED, text)
    probe = _escape_probe
    if probe is not None and "%" in compact and probe.search(compact):
        decoded = unquote(compact, errors="surrogateescape")
        for body in bodies:
            if body in decoded:
                text = _escaped_pattern(body).sub(REDACTED, text)
    return text


def register_environment(env: os._Environ[str] | dict[str, str] | None = None) -> None:
    """The API keys in the environment (they may reach text through a child's output or a message)."""
    values = os.environ if env is None else env
    for name in SECRET_ENV_VARS:
        register(values.get(name))


def register_mcp_values(env: dict[str, str], headers: dict[str, str]) -> None:
    """An MCP server's header values (all of them, and the token after an auth scheme) and its env values
    that are secret by name or look like a key. Other env values (paths, flags) would redact ordinary text."""
    for value in headers.values():
        register(value)
        scheme, _, token = value.strip().partition(" ")
        if token and scheme.lower() in ("bearer", "basic", "token"):
            register(token)
    for name, value in env.items():
        if _SECRET_NAME.search(name) or looks_like_key(value):
            register(value)


def looks_like_key(value: str) -> bool:
    """One word of letters and digits, long enough to be a token, not a path or a URL."""
    value = value.strip()
    return (
        len(value) >= 16
        and re.fullmatch(r"[A-Za-z0-9._~+=-]+", value) is not None
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
    )


def _compiled() -> re.Pattern[str]:
    global _pattern
    pattern = _pattern
    if pattern is None:
        with _lock:
            pattern = _pattern = re.compile("|".join(_SHAPES))
    return pattern


def _replace(match: re.Match[str]) -> str:
    prefix = match.group("auth") or match.group("bearer") or ""
    return prefix + REDACTED


def redact(text: str) -> str:
    """``text`` with every known secret and key-shaped string replaced by ``[redacted]``."""
    if not isinstance(text, str) or len(text) < MIN_SECRET_LENGTH:
        # Nothing fits: every registered form is MIN_SECRET_LENGTH characters or more, and so is every key
        # shape (tests check both). Most strings of a record (roles, types, tool names) end here.
        return text
    if _needles:
        text = _redact_secrets(text)
    lowered = text.lower()
    if not any(t in lowered for t in _TRIGGERS):
        return text
    return _compiled().sub(_replace, text)


def redact_obj(value: Any) -> Any:
    """A copy of a JSON-like value with strings redacted and credential-named dict values replaced.

    Strings inside are redacted before serialising, so JSON escapes never hide a key or split it.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: REDACTED if _is_credential(k, v) else redact_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_obj(v) for v in value]
    return value


def _is_credential(key: Any, value: Any) -> bool:
    return isinstance(key, str) and isinstance(value, str) and bool(value) and bool(_SECRET_DICT_KEY.match(key))


class RedactingStream:
    """A text stream whose writes are redacted: installed once over ``sys.stderr`` so every line kimicode
    (or a library, or a traceback) prints there passes the same filter. Writers send whole lines or
    messages, so a secret is not split across two writes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
