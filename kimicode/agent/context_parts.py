"""What fills the context window, part by part (``/context``), adding up to the very estimate the loop
compacts on (``Agent.context_tokens``, kimicode.agent.accounting.ContextMeter).

Each part is measured in the meter's own units (kimicode.agent.accounting.approx_chars: characters, an image
as its token budget); the parts then share out the loop's estimate in proportion (largest remainders), so
they always add up to it exactly. Before the endpoint has counted a request the estimate covers the
messages only: the tool schemas sent alongside are then reported apart, as not in it yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.agent.accounting import IMAGE_CHARS, approx_chars
from kimicode.agent.compaction import keep_recent_tokens
from kimicode.agent.context import compaction_split
from kimicode.agent.prompt import project_instructions
from kimicode.llm.messages import Message

if TYPE_CHECKING:
    from kimicode.agent.loop import Agent

SYSTEM, SKILLS, INSTRUCTIONS, TOOLS, MCP_TOOLS, HISTORY, IMAGES = (
    "system prompt", "skills catalogue", "AGENTS.md", "tool schemas", "MCP tools", "history", "images",
)


@dataclass
class ContextParts:
    parts: list[tuple[str, int]]  # (part, tokens), adding up to ``total``
    total: int  # the loop's estimate: what it compares with the window to decide on compaction
    window: int
    measured: bool  # the endpoint counted the last request (the total starts from its count)
    outside: list[tuple[str, int]] = field(default_factory=list)  # sent, but not in the estimate yet
    compactable_messages: int = 0  # what compaction would summarise …
    kept_messages: int = 0  # … and keep verbatim


def context_parts(agent: Agent, workspace: Path, skills_text: str = "") -> ContextParts:
    """The window by part for ``agent`` now; ``skills_text`` is the skills section of its system prompt."""
    messages = agent.messages
    system = messages[0] if messages and messages[0].get("role") == "system" else None
    sizes = _system_sizes(system, workspace, skills_text) if system is not None else []
    body = messages[1:] if system is not None else messages
    images = sum(_image_count(m) for m in body) * IMAGE_CHARS
    sizes += [(HISTORY, sum(approx_chars(m) for m in body) - images), (IMAGES, images)]
    fixed, mcp = _tool_sizes(agent)
    # Whether the endpoint has counted decides what the estimate covers (the meter is the loop's own).
    measured = bool(agent._meter.measured)
    outside: list[tuple[str, int]] = []
    if measured:
        sizes += [(TOOLS, fixed), (MCP_TOOLS, mcp)]
    else:
        outside = [(TOOLS, fixed // 4), (MCP_TOOLS, mcp // 4)]
    total = agent.context_tokens
    window = agent.client.profile.context_window
    old, kept = compaction_split(messages, keep_recent_tokens(messages, window))
    return ContextParts(_share(total, sizes), total, window, measured, outside, old, kept)


def _system_sizes(system: Message, workspace: Path, skills_text: str) -> list[tuple[str, int]]:
    content = system.get("content")
    text = content if isinstance(content, str) else ""
    instructions = sum(
        len(block)
        for path, body in project_instructions(workspace)
        if (block := f"# Project instructions ({path.name}, from {path.parent})\n\n{body.strip()}") in text
    )
    skills = len(skills_text.strip()) if skills_text.strip() and skills_text.strip() in text else 0
    return [(SYSTEM, approx_chars(system) - instructions - skills), (SKILLS, skills), (INSTRUCTIONS, instructions)]


def _tool_sizes(agent: Agent) -> tuple[int, int]:
    fixed = mcp = 0
    for name, tool in agent.current_tools().items():
        size = len(json.dumps(tool.schema()))
        if name in agent.tools:
            fixed += size
        else:
            mcp += size
    return fixed, mcp


def _image_count(message: Message) -> int:
    content = message.get("content")
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") != "text") if isinstance(content, list) else 0


def _share(total: int, sizes: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """``total`` shared out in proportion to ``sizes`` (largest remainders), so the shares add up to it."""
    weight = sum(max(0, size) for _name, size in sizes)
    if weight <= 0:
        return [(name, total if index == 0 else 0) for index, (name, _size) in enumerate(sizes)]
    exact = [(name, total * max(0, size) / weight) for name, size in sizes]
    shares = [int(value) for _name, value in exact]
    order = sorted(range(len(exact)), key=lambda i: exact[i][1] - shares[i], reverse=True)
    for index in order[: total - sum(shares)]:
        shares[index] += 1
    return [(name, share) for (name, _value), share in zip(exact, shares, strict=True)]
