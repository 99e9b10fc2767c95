"""Check a tool call's arguments against its JSON schema before the tool runs.

Models sometimes send "5" for an integer or "true" for a boolean; those are coerced. Anything else that
does not fit becomes one readable error for the model instead of an exception inside the tool.
"""

from __future__ import annotations

from typing import Any

from kimicode import jsontext

_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


class ArgumentError(ValueError):
    pass


def _coerce(name: str, value: Any, expected: str) -> Any:
    wanted = _TYPES.get(expected)
    if wanted is None:
        return value
    if expected in ("integer", "number") and isinstance(value, bool):
        raise ArgumentError(f"'{name}' must be {expected}, got a boolean")
    if isinstance(value, wanted):
        return value
    if isinstance(value, str):
        text = value.strip()
        if expected == "integer":
            try:
                return int(text)
            except ValueError:
                pass
        elif expected == "number":
            try:
                return float(text)
            except ValueError:
                pass
        elif expected == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        elif expected in ("array", "object"):
            try:
                parsed = jsontext.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, wanted):
                return parsed
    if expected == "number" and isinstance(value, int):
        return value
    raise ArgumentError(f"'{name}' must be {expected}, got {type(value).__name__}")


def validate_args(schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """The arguments with simple coercions applied; raises ArgumentError naming what is wrong."""
    properties: dict[str, Any] = schema.get("properties") or {}
    missing = [name for name in schema.get("required") or [] if name not in args or args[name] is None]
    if missing:
        raise ArgumentError(f"missing required argument(s): {', '.join(missing)}")
    checked = dict(args)
    for name, value in args.items():
        spec = properties.get(name)
        if spec is None or value is None:
            continue
        expected = spec.get("type")
        if isinstance(expected, str):
            checked[name] = _coerce(name, value, expected)
    return checked
