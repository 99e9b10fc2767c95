"""What a tool call gives back, and the error a tool raises for the model to read.

The lowest layer of kimicode.tools: it imports nothing of the package, so the parts a tool context holds
(background tasks, the todo list) can use it without reaching up to ``base``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kimicode.llm.messages import Image

# One place for how much a tool may return to the model (characters).
MAX_OUTPUT_CHARS = 16_000


@dataclass
class ToolResult:
    text: str
    images: list[Image] = field(default_factory=list)
    is_error: bool = False
    # Set by `submit`: the loop ends after this step.
    submitted: bool = False


class ToolError(Exception):
    """Raised inside a tool for a problem the model should read and fix (bad path, no match...)."""
