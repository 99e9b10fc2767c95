"""The ``spawn_agents`` tool (swarm mode): hand sub-tasks to sub-agents that run in parallel.

The tool itself only checks the request; running the sub-agents is the job of the swarm it is given
(kimicode.agent.swarm), which keeps this module free of the agent loop.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, NamedTuple, Protocol

from pydantic import Field

from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.params import ToolParams, checked_by


class SubTask(NamedTuple):
    role: str
    task: str
    agent: str = ""  # a named agent (custom agents); "" for an ad-hoc sub-agent


class SubAgentRunner(Protocol):
    async def spawn(self, agents: list[SubTask], ctx: ToolContext) -> ToolResult:
        """Run one sub-agent per sub-task and report each one's result."""
        ...


class SubAgent(ToolParams):
    role: str = Field(description="Who it is, e.g. 'test writer', 'reviewer'.")
    task: str = Field(description="Its complete, self-contained task.")
    agent: str | None = Field(None, description="Optional: the name of a named agent to run it.")


def _checked_agents(value: Any) -> list[dict[str, str]]:
    return [sub._asdict() for sub in parse_sub_tasks(value)]


class SpawnAgentsParams(ToolParams):
    agents: Annotated[list[SubAgent], checked_by(_checked_agents)] = Field(
        description="The sub-agents to run, in parallel."
    )


class SpawnAgentsTool(Tool):
    name: ClassVar[str] = "spawn_agents"
    description: ClassVar[str] = (
        "Run sub-agents in parallel, one per {role, task}. Use it when the work splits into independent "
        "parts (one per file, module, question or check). Each sub-agent starts with an empty context: "
        "its task must say everything it needs (paths, goal, how to check, what to report back). "
        "Sub-agents share this workspace and its tools but cannot spawn agents; give parallel sub-agents "
        "different files to edit. All of them finish before this call returns with each one's result; "
        "you may call it again for another wave. Up to 100 sub-agents per call."
    )
    params: ClassVar[type[SpawnAgentsParams]] = SpawnAgentsParams
    # Sub-agents ask for approval of their own actions, one by one.
    read_only: ClassVar[bool] = True

    def __init__(self, runner: SubAgentRunner) -> None:
        self.runner = runner

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            agents = [SubTask(a.role, a.task, a.agent or "") for a in SpawnAgentsParams.parse(args).agents]
        except ToolError as exc:
            return ToolResult(f"Error: {exc}", is_error=True)
        return await self.runner.spawn(agents, ctx)

    def summary(self, args: dict[str, Any]) -> str:
        agents = args.get("agents")
        count = len(agents) if isinstance(agents, list) else 0
        return f"spawn_agents ({count} sub-agent{'s' if count != 1 else ''})"


def parse_agents(value: Any) -> list[tuple[str, str]]:
    """The (role, task) pairs of a request; a malformed entry is an error naming its index."""
    return [(sub.role, sub.task) for sub in parse_sub_tasks(value)]


def parse_sub_tasks(value: Any) -> list[SubTask]:
    """The sub-tasks of a request; a malformed entry is an error naming its index."""
    if not isinstance(value, list) or not value:
        raise ToolError("'agents' must be a non-empty list of {role, task} objects")
    parsed: list[SubTask] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ToolError(f"agents[{index}] must be an object with 'role' and 'task'")
        role, task = entry.get("role"), entry.get("task")
        if not isinstance(task, str) or not task.strip():
            raise ToolError(f"agents[{index}] has no 'task': give each sub-agent its complete task as text")
        if role is not None and not isinstance(role, str):
            raise ToolError(f"agents[{index}].role must be a string")
        agent = entry.get("agent")
        if agent is not None and not isinstance(agent, str):
            raise ToolError(f"agents[{index}].agent must be the name of a named agent")
        parsed.append(SubTask((role or "").strip() or (agent or "").strip() or "worker", task, (agent or "").strip()))
    return parsed
