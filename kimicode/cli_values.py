"""Command-line values without a validator for what needs none.

typer checks each parameter's value with a pydantic validator it builds at the parameter's first value,
and builds it for every parameter of the command, given or not: for the run command that is about fifteen
validators, some 4 ms of CPU on every start even where pydantic is loaded anyway. Yet a parameter left
out (no value) is settled before any validator runs, and a plain text parameter's text comes back from
its validator as it went in. So those two pass here as they are, and only another value (a number, a
path, ...) has typer build its validator, then: what it accepts, what it makes of it and what it says
when it refuses stay typer's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typer._click import Command, Context
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import _TyperParameter


@dataclass(frozen=True)
class _BuiltWhenNeeded(RuntimeParam):
    """Stands in for a parameter's validator until a value needs one (``coerce`` itself, typer's, has
    already given back a missing value)."""

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if type(value) is str and self.annotation is str and self.parameter_info.parser is None:
            return value  # the text as typed: a text validator with no parser of its own returns it so
        built = build_runtime_param(param.type_descriptor)
        param._runtime_param = built  # the parameter's next value goes straight to typer's validator
        return built._coerce_value(value, param=param, ctx=ctx)


def build_validators_when_needed(command: Command) -> Command:
    """``command`` with each parameter's validator built at its first value that needs one."""
    # The help option is made at the first parse and kept on the command: made now, from the same settings
    # a parse would use, so it is one of the parameters seen to here.
    help_option = command.get_help_option(Context(command, **command.context_settings))
    for param in [*command.params, help_option]:
        if isinstance(param, _TyperParameter) and param._runtime_param is None:
            descriptor = param.type_descriptor
            param._runtime_param = _BuiltWhenNeeded(parameter_info=descriptor.parameter_info,
                                                    annotation=descriptor.annotation)
    return command
