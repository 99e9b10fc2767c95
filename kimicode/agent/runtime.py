"""Assemble a ready-to-run Agent from a Config: client, tools, system prompt, session identity.

Every front end (headless, REPL, ACP) builds its agent here, so they all run the same thing.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from kimicode.agent.loop import Agent, Approver, refuse_all
from kimicode.agent.policy import ApprovalPolicy
from kimicode.agent.prompt import build_system_prompt
from kimicode.agent.skill_catalog import SKILL_MODES, find_skills, skills_section
from kimicode.config import Config
from kimicode.discovery.skills import SkillCatalog
from kimicode.llm.client import ChatClient
from kimicode.llm.profiles import profile_for
from kimicode.tools.base import Tool, ToolContext


def new_session_id() -> str:
    """Sortable and unique: listing sessions by id lists them by time."""
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


@dataclass
class Runtime:
    config: Config
    client: ChatClient
    ctx: ToolContext
    tools: dict[str, Tool]
    system_prompt: str
    session_id: str
    prompt_sections: list[str] = field(default_factory=list)
    # The skills found for this run (None in modes without skills); front ends report its invalid ones.
    skills: SkillCatalog | None = None

    def agent(self, approver: Approver = refuse_all, **overrides: object) -> Agent:
        settings: dict[str, object] = {
            "client": self.client,
            "tools": self.tools,
            "ctx": self.ctx,
            "system_prompt": self.system_prompt,
            "approver": approver,
            "policy": ApprovalPolicy(yolo=self.config.yolo),
            "max_steps": self.config.max_steps,
            "thinking": self.config.thinking,
            "session_id": self.session_id,
        }
        settings.update(overrides)
        return Agent(**settings)  # type: ignore[arg-type]


def base_tools(config: Config) -> list[Tool]:
    from kimicode.tools.registry import swe_tools

    return swe_tools()


def vision_tools(config: Config) -> tuple[list[Tool], list[str]]:
    """The screenshot tool and the prompt section that teaches the render → look → fix loop."""
    if config.mode not in ("agent", "swarm") or not profile_for(config.model).vision:
        return [], []
    from kimicode.agent.prompt import load_prompt
    from kimicode.tools.screenshot import ScreenshotTool

    return [ScreenshotTool()], [load_prompt("visual.md")]


def build_runtime(config: Config, session_id: str | None = None, extra_tools: list[Tool] | None = None) -> Runtime:
    workspace: Path = config.work_dir
    seeing, sections = vision_tools(config)
    tools = {tool.name: tool for tool in [*base_tools(config), *seeing, *(extra_tools or [])]}
    skills: SkillCatalog | None = None
    if config.mode in SKILL_MODES:
        skills = find_skills(workspace, config.home)
        sections.append(skills_section(skills))  # bounded; empty when there are no skills
    return Runtime(
        config=config,
        client=ChatClient(config, profile_for(config.model)),
        ctx=ToolContext(workspace=workspace),
        tools=tools,
        system_prompt=build_system_prompt(workspace, sections),
        session_id=session_id or new_session_id(),
        prompt_sections=sections,
        skills=skills,
    )
