"""What an untrusted project's config.toml may change: settings that narrow what a run may do apply, settings
that widen it wait for trust.

Invariants:
- A value applies untrusted only when it is harmless (how the model is asked, not what it may do) or does
  not widen the user's own setting: a stricter sandbox, a lower limit, ``yolo = false``.
- Allow rules always wait for trust; deny and ask rules always apply.
- Anything not known to be harmless counts as widening (another endpoint, another key).
- Keys are never shown: a secret's line says only that a key is set.
"""

from __future__ import annotations

from typing import Any

from kimicode.config_file import ESCALATION_MODES, SANDBOX_MODES, Rule

# Project values of these apply untrusted: they change how the model is asked, not what it may do.
HARMLESS_KEYS = frozenset(
    {
        "model",
        "mode",
        "thinking_style",
        "context_window",
        "max_output_tokens",
        "retry_base_delay",
        "video_input",
        "swarm_isolation",
        "mcp_startup_wait",
        "notify_after",
    }
)
# Limits: a lower project value narrows and applies; a higher one widens (longer, costlier runs).
LIMIT_KEYS = frozenset(
    {
        "max_steps",
        "max_retries",
        "request_timeout",
        "stream_stall_timeout",
        "swarm_concurrency",
        "swarm_max_agents",
        "swarm_max_tool_calls",
        "swarm_max_steps",
        "video_max_frames",
        "video_token_budget",
    }
)
SECRET_KEYS = frozenset({"api_key"})


def _shown(key: str, value: Any) -> str:
    """One line for a setting; keys are never shown."""
    if key in SECRET_KEYS:
        return f"{key} = (a key)"
    if isinstance(value, bool):
        return f"{key} = {'true' if value else 'false'}"
    if isinstance(value, list):
        return f"{key} = [{', '.join(str(v) for v in value)}]"
    return f"{key} = {value}"


def _widens(base: object, key: str, value: Any) -> bool:
    """Would this project value let a run do more than the user's own settings allow?"""
    current = getattr(base, key)
    if key in HARMLESS_KEYS:
        return False
    if key in ("yolo", "sandbox_network"):
        return bool(value) and not current
    if key == "escalation":
        return ESCALATION_MODES.index(value) > ESCALATION_MODES.index(current)
    if key == "add_dirs":
        return bool(set(value) - set(current))
    if key == "sandbox":
        return SANDBOX_MODES.index(value) > SANDBOX_MODES.index(current)
    if key in LIMIT_KEYS:
        return bool(value > current)
    return bool(value != current)  # endpoints, keys and whatever is not known to be harmless


def split_project(
    base: object, values: dict[str, Any], rules: list[Rule]
) -> tuple[dict[str, Any], list[Rule], list[str]]:
    """The project's settings in three parts: values that may apply untrusted, rules that may, and the
    human lines of everything that would widen ``base`` (applied only when trusted)."""
    safe = {k: v for k, v in values.items() if not _widens(base, k, v)}
    widening = [_shown(k, v) for k, v in values.items() if k not in safe]
    safe_rules = [(kind, text) for kind, text in rules if kind != "allow"]
    widening += [f"{kind} {text}" for kind, text in rules if kind == "allow"]
    return safe, safe_rules, widening
