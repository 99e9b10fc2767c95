"""Assemble a ready-to-run Agent from a Config: client, tools, system prompt, session identity.

Every front end (headless, REPL, ACP) builds its agent here, so they all run the same thing.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.agent.agent_catalog import AgentSetup, agent_instructions, allowed_extras, allowed_tools
from kimicode.agent.callbacks import Approver, refuse_all
from kimicode.agent.loop import Agent
from kimicode.agent.prompt import build_system_prompt
from kimicode.agent.skill_catalog import SKILL_MODES, find_skills, skills_section
from kimicode.agent.swarm_accounting import annotate_result
from kimicode.config import Config
from kimicode.discovery.skills import SkillCatalog
from kimicode.llm.client import ChatClient
from kimicode.llm.profiles import ModelProfile
from kimicode.llm.setup import ModelSetup, model_setup
from kimicode.security.policy import Policy
from kimicode.tools.base import Tool, ToolContext

if TYPE_CHECKING:
    from kimicode.agent.swarm import Swarm
    from kimicode.extensions.agents import AgentCatalog, AgentSpec
    from kimicode.extensions.hooks import Hooks
    from kimicode.security.sandbox import Sandbox
    from kimicode.tools.background import TaskManager


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
    # Project instruction files that were not read (they lead out of the project); front ends say so.
    instruction_problems: list[str] = field(default_factory=list)
    # Set in swarm mode: runs the sub-agents the spawn_agents tool asks for.
    swarm: Swarm | None = None
    # Headless runs have nobody to ask: what would be asked is refused (DESIGN.md B.1, B.8).
    headless: bool = False
    # The model and endpoint facts this run was built with (derived once, in build_runtime's caller).
    model: ModelSetup | None = None
    # The custom agents found (None in modes without them), and the one the main agent runs as (--agent).
    agents: AgentCatalog | None = None
    main_agent: AgentSpec | None = None
    # Clients for named sub-agents' own models, made on first use; closed with the run's.
    agent_clients: dict[str, ChatClient] = field(default_factory=dict)
    # The hooks every agent of this run fires (kimicode.extensions.hooks); None when none are configured.
    hooks: Hooks | None = None

    async def aclose(self) -> None:
        """Release the model clients' connections (sub-agents share them)."""
        for client in self.agent_clients.values():
            await client.aclose()
        await self.client.aclose()

    def switch_model(self) -> ChatClient:
        """A client for ``config.model`` at the same endpoint (what is known about the endpoint carries over),
        for this runtime and its sub-agents; returns the previous client, for the caller to close."""
        from kimicode.llm.setup import model_setup

        previous = self.client
        self.model = self.model.for_model(self.config) if self.model else model_setup(self.config)
        self.client = ChatClient(self.config, self.model.profile, self.model.endpoint, self.model.store)
        if self.swarm is not None:  # sub-agents ask the orchestrator's model
            self.swarm.client = self.client
        return previous

    def policy(self) -> Policy:
        """A fresh decision point for an agent of this run (sub-agents share their orchestrator's)."""
        return build_policy(self.config, self.ctx, self.skills, headless=self.headless)

    def agent(self, approver: Approver = refuse_all, **overrides: object) -> Agent:
        settings: dict[str, object] = {
            "client": self.client,
            "tools": self.tools,
            "ctx": self.ctx,
            "system_prompt": self.system_prompt,
            "approver": approver,
            "policy": overrides.get("policy") or self.policy(),
            "max_steps": self.config.max_steps,
            "thinking": self.config.thinking,
            "session_id": self.session_id,
            "on_done": annotate_result,
            "hooks": self.hooks,
        }
        settings.update(overrides)
        if self.config.mode not in AGENT_MODES:
            settings.pop("extra_tools", None)  # MCP tools belong to the agent modes (DESIGN.md B.7)
        elif self.main_agent is not None:  # --agent: its allowlist narrows the MCP tools too
            settings["extra_tools"] = allowed_extras(settings.get("extra_tools"), self.main_agent)  # type: ignore[arg-type]
        if self.swarm is not None and "on_done" not in overrides:
            self.swarm.bind(settings["approver"], settings["policy"], settings.get("extra_tools"))  # type: ignore[arg-type]
            settings["on_done"] = self.swarm.finish_run
        return Agent(**settings)  # type: ignore[arg-type]


def build_policy(config: Config, ctx: ToolContext, skills: SkillCatalog | None, headless: bool = False) -> Policy:
    """The run's decision point. Config layering already chose the rules (a project's allow rules only in a
    trusted folder; the user's saved ones always), so the policy takes them as they are."""
    return Policy(
        stance=getattr(config, "stance", "ask"),
        yolo=config.yolo,
        trusted=config.trusted,
        headless=headless,
        sandbox=ctx.sandbox,
        rules=config.permission_rules,
        workspace=config.work_dir,
        home=config.home,
        skill_dirs=[skill.path.parent for skill in skills.skills] if skills is not None else [],
        add_dirs=getattr(config, "add_dirs", []),
        allow_escalation=getattr(config, "escalation", "ask") == "auto",
    )


def base_tools(config: Config) -> list[Tool]:
    """The SWE toolset; in the agent modes with background tasks, plus the todo list and the task tools.
    The plan hand-over is there in every mode (offered only in plan mode)."""
    from kimicode.tools.propose_plan import ProposePlanTool
    from kimicode.tools.registry import swe_tools

    if config.mode not in AGENT_MODES:
        return [*swe_tools(), ProposePlanTool()]
    from kimicode.tools.task_output import TaskOutputTool
    from kimicode.tools.task_stop import TaskStopTool
    from kimicode.tools.todo import TodoTool

    return [*swe_tools(background=True), TodoTool(), TaskOutputTool(), TaskStopTool(), ProposePlanTool()]


SWE_TOOL_NAMES = ("bash", "view", "createfile", "strreplace", "insert", "submit")
# Modes that get screenshot, skills and MCP on top of the SWE toolset (DESIGN.md B.7); swarm adds spawn_agents.
AGENT_MODES = ("agent", "swarm")

ORCHESTRATOR_SECTION = """\
# Agent Swarm

You can run sub-agents in parallel with `spawn_agents`. When a task splits into independent parts, decompose
it, give each part to a sub-agent with a fitting role and a complete, self-contained task, then check and
merge their results. Parallel sub-agents should edit different files. Fewer steps on the longest path is the
goal: spawn many at once rather than one after another.
"""


def sub_agent_tools(tools: dict[str, Tool]) -> dict[str, Tool]:
    """What a sub-agent may use: the SWE toolset and the read-only tools (its own todo list, the session's
    background tasks); never spawn_agents, and never the plan hand-over (plans are the orchestrator's)."""
    return {
        name: tool
        for name, tool in tools.items()
        if name != "spawn_agents" and not tool.plan_only and (name in SWE_TOOL_NAMES or tool.read_only)
    }


ALONGSIDE_SECTION = """\
## Todo list
For work of several steps keep a `todo` list current (one item in_progress); skip it for quick tasks.
"""


def vision_tools(config: Config, profile: ModelProfile) -> tuple[list[Tool], list[str]]:
    """The screenshot tool and the prompt section that teaches the render → look → fix loop."""
    if config.mode not in AGENT_MODES or not profile.vision:
        return [], []
    from kimicode.agent.prompt import load_prompt
    from kimicode.tools.screenshot import ScreenshotTool

    return [ScreenshotTool()], [load_prompt("visual.md")]


def config_sandbox(config: Config) -> Sandbox:
    """The sandbox the config asks for, as this machine can give it (the machine's answer is kept for the
    process, so asking again costs nothing)."""
    from kimicode.security.sandbox import detect_sandbox

    return detect_sandbox(
        getattr(config, "sandbox", "workspace-write"),
        getattr(config, "sandbox_network", False),
        config.work_dir,
        config.home,
        sockets=[Path(p) for p in getattr(config, "sandbox_sockets", [])],
    )


def probe_sandbox(config: Config) -> None:
    """Ask the machine for the config's sandbox ahead of the run, from a thread: starting bubblewrap is
    mostly waiting, so the caller can load modules meanwhile. A problem is met again, and said, when the
    run asks for the sandbox."""
    try:
        config_sandbox(config)
    except Exception:  # noqa: BLE001 - the run asks again and reports it there
        return


def command_context(config: Config, tasks: TaskManager | None = None) -> ToolContext:
    """The tools' context: the workspace, the sandbox for commands, the variables passed on purpose, and (in
    the agent modes) the session's background tasks: ``tasks``, or a new manager."""
    sandbox = config_sandbox(config)
    from kimicode.security.childenv import environment

    own = environment()
    passed = {name: own[name] for name in getattr(config, "pass_env", []) if name in own}
    if config.mode in AGENT_MODES and tasks is None:
        from kimicode.tools.background import TaskManager

        tasks = TaskManager()
    return ToolContext(
        workspace=config.work_dir, env=passed, sandbox=sandbox, tasks=tasks if config.mode in AGENT_MODES else None
    )


def build_runtime(
    config: Config,
    session_id: str | None = None,
    extra_tools: list[Tool] | None = None,
    headless: bool = False,
    tasks: TaskManager | None = None,
    model: ModelSetup | None = None,
) -> Runtime:
    """``tasks``: the background tasks to keep (the REPL switching modes keeps its session's tasks)."""
    workspace: Path = config.work_dir
    from kimicode.tools.registry import web_tools

    model = model or model_setup(config)
    seeing, sections = vision_tools(config, model.profile)
    web = web_tools(config.base_url) if config.mode in AGENT_MODES else []  # B.9: fetch (+ $web_search)
    if config.mode in AGENT_MODES:
        sections.append(ALONGSIDE_SECTION)
    tools = {tool.name: tool for tool in [*base_tools(config), *seeing, *web, *(extra_tools or [])]}
    skills: SkillCatalog | None = None
    if config.mode in SKILL_MODES:
        skills = find_skills(workspace, config.home)
        sections.append(skills_section(skills))  # bounded; empty when there are no skills
    client = ChatClient(config, model.profile, model.endpoint, model.store)
    named = AgentSetup.find(config, AGENT_MODES)  # custom agents: --agent, and spawn_agents' named ones
    hooks = run_hooks(config)
    instruction_problems: list[str] = []
    system_prompt = build_system_prompt(workspace, sections, skipped=instruction_problems)
    session = session_id or new_session_id()
    swarm: Swarm | None = None
    if config.mode == "swarm":  # (its modules load only for a swarm run)
        from kimicode.agent.swarm import Swarm, SwarmLimits
        from kimicode.tools.spawn_agents import SpawnAgentsTool

        swarm = Swarm(
            client,
            sub_agent_tools(tools),
            system_prompt,  # sub-agents: the same prompt without the orchestrator's section
            SwarmLimits(
                concurrency=config.swarm_concurrency,
                max_agents=config.swarm_max_agents,
                max_tool_calls=config.swarm_max_tool_calls,
                max_steps=config.swarm_max_steps,
            ),
            thinking=config.thinking,
            session_id=session,
            isolation="worktree" if config.swarm_isolation == "worktree" else "shared",
        )
        swarm.hooks = hooks  # sub-agents fire the same hooks (their end is SubagentStop)
        tools["spawn_agents"] = SpawnAgentsTool(swarm)
        swarm.named, swarm.client_for = named.for_swarm(config, model)
        system_prompt = build_system_prompt(workspace, [*sections, ORCHESTRATOR_SECTION, *named.orchestrator_sections()])
    if named.main is not None:  # --agent: its allowlist and its instructions, on top of the mode's own
        tools = allowed_tools(tools, named.main)
        system_prompt = system_prompt.rstrip("\n") + "\n\n" + agent_instructions(named.main)
    return Runtime(
        config=config,
        client=client,
        ctx=command_context(config, tasks),
        tools=tools,
        system_prompt=system_prompt,
        session_id=session,
        prompt_sections=sections,
        skills=skills,
        instruction_problems=instruction_problems,
        swarm=swarm,
        headless=headless,
        model=model,
        agents=named.catalog,
        main_agent=named.main,
        agent_clients=named.clients,
        hooks=hooks,
    )


def run_hooks(config: Config) -> Hooks | None:
    """The hooks configured for this run (the project's only in a trusted folder); None when there are none."""
    from kimicode.extensions.hooks_config import load_hooks

    found = load_hooks(config)
    if not found.hooks and not found.problems:
        return None  # (the hooks' runner loads only for a run that has some)
    from kimicode.extensions.hooks import Hooks

    return Hooks(found, config.work_dir, config.home)
