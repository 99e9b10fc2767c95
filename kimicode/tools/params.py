"""Tool parameters as typed models: a built-in tool's ``Params`` class is both the JSON schema the model
reads and the check its arguments pass before the tool runs.

Invariants:
- The schema is made here from the fields, not by pydantic's generator, which adds titles, ``$defs`` and
  ``anyOf`` for optional fields: every request carries every schema, so each byte is paid on every step.
  A property lists its type, then its description, then its default when that is not None (a list of
  objects puts the objects' shape last).
- JSON null counts as "not given", as it always has; an optional field without a default worth naming is
  ``X | None = None``, and its schema is X's.
- Coercions are those a model's slips need: "5" or 5.0 for 5, "true" for true. A boolean for a number is
  refused. Every error is one line naming the parameter, raised as ToolError for the model to read.
- Models defer building their validators to their first call: importing the tools only collects fields.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from kimicode.tools.result import ToolError

# Error types: one whose message follows "parameter 'name' ", and one that is the whole message.
_ABOUT_PARAMETER = "kimicode_parameter"
_WHOLE_MESSAGE = "kimicode_message"


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError(_ABOUT_PARAMETER, "{message}", {"message": message})


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem(f"must be a string, got {type(value).__name__}")
    return value


def _as_int(value: Any) -> int:
    # bool is an int subclass; true/false for a number is a mistake worth naming.
    if isinstance(value, bool):
        raise _problem("must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())  # some models quote numbers
    raise _problem(f"must be an integer, got {value!r}")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _problem(f"must be true or false, got {value!r}")


def _as_int_pair(value: Any) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _problem(f"must be a list of two integers [start, end], got {value!r}")
    return [_as_int(value[0]), _as_int(value[1])]


Str = Annotated[str, BeforeValidator(_as_str)]
Int = Annotated[int, BeforeValidator(_as_int)]
Flag = Annotated[bool, BeforeValidator(_as_bool)]
IntPair = Annotated[list[int], BeforeValidator(_as_int_pair), annotated_types.Len(2, 2)]


def checked_by(check: Callable[[Any], Any]) -> BeforeValidator:
    """A field checked by ``check``, a tool's own parser whose ToolError is the whole message (lists of
    objects name the entry at fault: "agents[2] has no 'task'")."""

    def run(value: Any) -> Any:
        try:
            return check(value)
        except ToolError as exc:
            raise PydanticCustomError(_WHOLE_MESSAGE, "{message}", {"message": str(exc)}) from None

    return BeforeValidator(run)


@dataclass(frozen=True)
class OneOf:
    """Schema-only: the values the model is told of (``enum``), while the tool itself reads the text."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Unlisted:
    """A parameter a tool still reads but no longer offers: absent from the schema."""


UNLISTED = Unlisted()


class ToolParams(BaseModel):
    """The arguments of one tool; subclasses declare fields with the types above."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    @classmethod
    def parse(cls, args: dict[str, Any]) -> typing.Self:
        """The checked arguments; raises ToolError naming the first problem."""
        try:
            return cls.model_validate({key: value for key, value in args.items() if value is not None})
        except ValidationError as exc:
            raise ToolError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"missing required parameter '{where}'"
    if error["type"] == _WHOLE_MESSAGE:
        return error["msg"]
    if error["type"] == _ABOUT_PARAMETER:
        return f"parameter '{where}' {error['msg']}"
    return f"parameter '{where}': {error['msg']}"


def json_schema(params: type[BaseModel]) -> dict[str, Any]:
    """The compact JSON schema of an object model: type, properties (unlisted ones left out), required."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in params.model_fields.items():
        if any(isinstance(extra, Unlisted) for extra in field.metadata):
            continue
        schema = _type_schema(field.annotation, list(field.metadata))
        if field.description:
            schema["description"] = field.description
        if field.is_required():
            required.append(name)
        elif field.default is not None:
            schema["default"] = field.default
        if "properties" in schema.get("items", {}):
            schema["items"] = schema.pop("items")  # a list of objects: what it is for before each one's shape
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": required}


_SCALARS: dict[Any, str] = {str: "string", int: "integer", bool: "boolean", float: "number"}


def _type_schema(annotation: Any, metadata: list[Any]) -> dict[str, Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        return _type_schema(inner, metadata + extra)
    if origin in (typing.Union, types.UnionType):
        arms = [arm for arm in get_args(annotation) if arm is not type(None)]
        if len(arms) != 1:
            raise TypeError(f"a parameter is one type, or one type or None: {annotation!r}")
        return _type_schema(arms[0], metadata)
    schema: dict[str, Any]
    if annotation in _SCALARS:
        schema = {"type": _SCALARS[annotation]}
    elif origin is Literal:
        values = list(get_args(annotation))
        schema = {"type": _SCALARS[type(values[0])], "enum": values}
    elif origin is list:
        (item,) = get_args(annotation)
        schema = {"type": "array", "items": _type_schema(item, [])}
    elif annotation is dict or origin is dict:
        schema = {"type": "object"}
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        schema = json_schema(annotation)
    else:
        raise TypeError(f"no JSON schema for parameter type {annotation!r}")
    for extra in metadata:
        if isinstance(extra, OneOf):
            schema["enum"] = list(extra.values)
        if isinstance(extra, (annotated_types.Len, annotated_types.MinLen)) and extra.min_length:
            schema["minItems"] = extra.min_length
        if isinstance(extra, (annotated_types.Len, annotated_types.MaxLen)) and extra.max_length is not None:
            schema["maxItems"] = extra.max_length
    return schema
