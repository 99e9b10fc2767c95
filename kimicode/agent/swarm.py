"""Agent Swarm: sub-agents run in parallel for an orchestrating agent, within shared budgets.

Each sub-agent is an ordinary ``Agent`` with its own history (the run's system prompt with the sub-agents'
common part, the same bytes for every plain sub-agent; its role, id and then its task verbatim as the user
message; the orchestrator's session, so its prompt-cache key: an endpoint's prompt cache serves all but the
task), the workspace's ToolContext (so the per-file locks are shared) and the same ChatClient. Every spawned sub-agent starts at once: how many talk to the model at a time is the endpoint's
adaptive limit (kimicode/llm/limiter.py, slow start from ``swarm_concurrency``), which their requests queue
at, so the swarm is as wide as the endpoint takes rather than running in waves. The swarm caps how many are
alive, how many tool calls run at once (``concurrency``: 50 commands at once would starve a small machine)
and are made in all, and how many steps each takes; it forwards sub-agent events to the orchestrator's event
stream and accounts steps as Kimi K2.5's PARL work does (kimicode.agent.swarm_accounting), adding
``concurrency_reached`` / ``concurrency_limit`` (most model requests in flight at once, and the endpoint's
adaptive limit at the end).

With isolation "worktree" (and a workspace inside a git repository) each sub-agent of a wave works in its
own git worktree of the workspace's current state instead, and the wave's end merges their changes back in
the order they were started (kimicode.vcs.worktrees); each result then says what was merged or conflicted.

Invariants:
- At most ``max_agents`` sub-agents are alive and ``concurrency`` of their tool calls run at once; tool calls
  past ``max_tool_calls`` are refused (and end the sub-agent that hit the budget), counted across the run.
- Every spawned sub-agent reports "queued", then "running" once its agent is made, then exactly one end
  state, and is accounted once; cancelling the orchestrator cancels every sub-agent and waits for each to close.
- Sub-agents ask the orchestrator's approver under its policy; they never approve anything themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kimicode.agent import events as ev
from kimicode.agent.accounting import RunTotals
from kimicode.agent.agent_catalog import agent_instructions, allowed_extras, allowed_tools
from kimicode.agent.callbacks import CURRENT_EMIT, CURRENT_STEP, Approver, Emit, refuse_all
from kimicode.agent.loop import Agent
from kimicode.agent.swarm_accounting import RunAccounting, SubAgentOutcome, SubState, annotate_result, capped_figures
from kimicode.agent.swarm_report import (
    ROLE_PROMPT,
    SUB_AGENT_PROMPT,
    TASK_HEADING,
    WORKTREE_PROMPT,
    first_line,
    format_outcomes,
    judge,
)
from kimicode.agent.swarm_tools import bound_tools, sandbox_slots, warm_sandboxes
from kimicode.llm.client import ChatClient
from kimicode.security.policy import Policy
from kimicode.tools.base import Tool, ToolContext, ToolResult
from kimicode.tools.spawn_agents import SubTask

if TYPE_CHECKING:
    from kimicode.extensions.agents import AgentSpec
    from kimicode.extensions.hooks import Hooks
    from kimicode.vcs.worktrees import WaveWorktrees

Isolation = Literal["shared", "worktree"]
ISOLATIONS: tuple[str, ...] = ("shared", "worktree")


@dataclass(frozen=True)
class SwarmLimits:
    concurrency: int = 20  # sub-agents' tool calls running at once (the model's width is the limiter's)
    max_agents: int = 100  # sub-agents alive (queued or running) at once
    max_tool_calls: int = 1500  # tool calls across every sub-agent of the run
    max_steps: int = 30  # steps per sub-agent


class ToolBudget:
    """The swarm-wide tool-call counter; taken before each sub-agent tool call."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def take(self) -> bool:
        if self.exhausted:
            return False
        self.used += 1
        return True

    def refusal(self) -> str:
        return (
            f"Not run: the swarm's budget of {self.limit} tool calls is used up. "
            "Stop now; your work so far is reported to the orchestrator."
        )


@dataclass
class _SubAgent:
    agent_id: str
    role: str
    task: str
    opening: str = ""  # what sets this sub-agent apart (role, id, workspace): its user message opens with it
    steps: int = 0
    tool_calls: int = 0
    last_tool: str = ""
    out_of_budget: bool = False
    asking: bool = False  # its current step's model request is not answered yet
    queued: bool = False  # one of its model requests found the endpoint's limit full
    agent: AgentSpec | None = None  # the named agent it runs as, if any


class Swarm:
    """Runs sub-agents for one orchestrator; ``spawn`` is what the spawn_agents tool calls."""

    def __init__(
        self,
        client: ChatClient,
        tools: dict[str, Tool],
        system_prompt: str,
        limits: SwarmLimits = SwarmLimits(),
        *,
        thinking: bool = True,
        session_id: str = "",
        isolation: Isolation = "shared",
    ) -> None:
        self.client = client
        self.tools = tools
        self.system_prompt = system_prompt.rstrip()
        self.limits = limits
        self.thinking = thinking
        self.session_id = session_id
        self.isolation = isolation
        self.approver: Approver = refuse_all
        self.policy = Policy()
        self.extra_tools: Callable[[], list[Tool]] | None = None
        # Named agents (custom agents) spawn_agents may ask for, and a client for another model than the run's.
        self.named: dict[str, AgentSpec] = {}
        self.client_for: Callable[[str], ChatClient] | None = None
        self.hooks: Hooks | None = None  # the run's hooks: a sub-agent's end fires SubagentStop
        self.budget = ToolBudget(limits.max_tool_calls)
        self.accounting = RunAccounting()
        self._tool_slots = asyncio.Semaphore(limits.concurrency)
        self._sandbox_slots = sandbox_slots()  # the session's long-lived sandboxes, shared by all sub-agents
        self._asking = 0  # sub-agents waiting for a model reply now (queued at the limiter or in flight)
        self._alive = 0
        self._ids = itertools.count(1)
        self._waves = itertools.count(1)
        self._worktree_setup = asyncio.Lock()  # `git worktree add` one at a time

    def bind(
        self, approver: Approver, policy: Policy, extra_tools: Callable[[], list[Tool]] | None = None
    ) -> None:
        """Sub-agents ask the orchestrator's approver, under its policy (session approvals carry over), and
        see the read-only ones of its late-joining tools (MCP servers)."""
        self.approver = approver
        self.policy = policy
        self.extra_tools = extra_tools

    def _read_only_extras(self) -> list[Tool]:
        if self.extra_tools is None:
            return []
        return [tool for tool in self.extra_tools() if tool.read_only and tool.name != "spawn_agents"]

    def finish_run(self, result: ev.RunResult) -> None:
        """The orchestrator's on_done: account the run, then start the next run's budget afresh."""
        annotate_result(result, self.accounting)
        result.extra.update(capped_figures(self.accounting, result.num_steps))
        result.extra["concurrency_reached"] = self.client.peak_in_flight
        result.extra["concurrency_limit"] = self.client.limiter.stats().limit
        self.accounting = RunAccounting()
        self.budget = ToolBudget(self.limits.max_tool_calls)

    async def spawn(self, agents: list[SubTask], ctx: ToolContext) -> ToolResult:
        unknown = sorted({sub.agent for sub in agents if sub.agent and sub.agent not in self.named})
        if unknown:
            known = ", ".join(self.named) or "none"
            return ToolResult(
                f"No sub-agents started: no named agent {', '.join(repr(n) for n in unknown)} (known: {known}).",
                is_error=True,
            )
        if self.budget.exhausted:
            return ToolResult(
                f"No sub-agents started: the swarm's budget of {self.budget.limit} tool calls is used up. "
                "Finish with the results you have.",
                is_error=True,
            )
        room = self.limits.max_agents - self._alive
        if room <= 0:
            return ToolResult(
                f"No sub-agents started: {self._alive} are already running (the limit is "
                f"{self.limits.max_agents}). Wait for them to finish.",
                is_error=True,
            )
        notes: list[str] = []
        if len(agents) > room:
            notes.append(
                f"Note: you asked for {len(agents)} sub-agents but at most {self.limits.max_agents} may be alive "
                f"at once, so only the first {room} were started; the other {len(agents) - room} were not run. "
                "Spawn them in another wave, or merge tasks."
            )
            agents = agents[:room]
        emit = CURRENT_EMIT.get() or _ignore
        step = CURRENT_STEP.get()
        wave: WaveWorktrees | None = None
        if self.isolation == "worktree":
            wave, note = await self._open_wave(ctx)
            if note:
                notes.append(note)
        subs = [
            _SubAgent(f"sub-{next(self._ids)}", sub.role, sub.task, agent=self.named.get(sub.agent) if sub.agent else None)
            for sub in agents
        ]
        self._alive += len(subs)
        for sub in subs:
            emit(ev.SubAgentUpdate(sub.agent_id, sub.role, "queued"))
        tasks = [asyncio.ensure_future(self._run_one(sub, ctx, emit, step, wave)) for sub in subs]
        # After the sub-agents' tasks, so their first requests go out before a sandbox is started.
        warming = warm_sandboxes(ctx, self.tools, len(subs), self._sandbox_slots) if wave is None else None
        try:
            outcomes = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            # Let every sub-agent close its run (kill its commands, report "cancelled") before going on.
            await asyncio.gather(*tasks, return_exceptions=True)
            if wave is not None:
                _discard_wave(wave, [sub.agent_id for sub in subs])
            raise
        finally:
            self._alive -= len(subs)
            if warming is not None:
                warming.cancel()  # (done long ago, unless no sub-agent ran a command)
        if wave is not None:
            await asyncio.to_thread(_merge_wave, wave, list(outcomes))
        return ToolResult(format_outcomes(list(outcomes), notes))

    async def _open_wave(self, ctx: ToolContext) -> tuple[WaveWorktrees | None, str]:
        """This wave's worktrees, or None and a note saying why the sub-agents share the workspace."""
        from kimicode.vcs.worktrees import WaveWorktrees, WorktreeError

        wave_id = f"{self.session_id or os.getpid()}-w{next(self._waves)}"
        try:
            wave = await asyncio.to_thread(WaveWorktrees.open, ctx.workspace, wave_id)
        except (WorktreeError, OSError) as exc:
            return None, f"Note: sub-agents shared the workspace (no git worktrees): {exc}."
        if wave is None:
            return None, (
                "Note: swarm_isolation is 'worktree' but the workspace is not inside a git repository, "
                "so the sub-agents shared the workspace."
            )
        return wave, ""

    async def _run_one(
        self, sub: _SubAgent, ctx: ToolContext, emit: Emit, step: int, wave: WaveWorktrees | None = None
    ) -> SubAgentOutcome:
        agent: Agent | None = None
        state: SubState = "failed"
        text = ""
        try:
            # Shared by every plain sub-agent byte for byte (the prompt cache's prefix); what differs opens
            # the user message, before the task.
            system_prompt = self.system_prompt + "\n\n" + SUB_AGENT_PROMPT.format(max_steps=self.limits.max_steps)
            sub.opening = ROLE_PROMPT.format(role=sub.role, agent_id=sub.agent_id)
            if wave is not None:
                async with self._worktree_setup:
                    workspace = await asyncio.to_thread(wave.add, sub.agent_id)
                ctx = dataclasses.replace(ctx, workspace=workspace)
                sub.opening += WORKTREE_PROMPT.format(workspace=workspace)
            if sub.agent is not None:
                system_prompt += "\n" + agent_instructions(sub.agent)
            agent = Agent(
                client=self._client(sub.agent),
                tools=allowed_tools(bound_tools(self.tools, self._tool_slots, self._sandbox_slots), sub.agent),
                extra_tools=allowed_extras(self._read_only_extras if self.extra_tools else None, sub.agent),
                ctx=ctx,
                system_prompt=system_prompt,
                approver=self.approver,
                policy=self.policy,
                max_steps=self.limits.max_steps,
                thinking=self.thinking,
                # The orchestrator's session: its key routes every sub-agent to the one prompt cache that holds
                # their common prefix (hooks see the session whose transcript exists).
                session_id=self.session_id,
                agent_id=sub.agent_id,
                tool_gate=lambda name: self._gate(sub),
                hooks=self.hooks,
            )
            emit(ev.SubAgentUpdate(sub.agent_id, sub.role, "running"))
            state, text = await self._drive(agent, sub, emit, step)
        except asyncio.CancelledError:
            state, text = "cancelled", "cancelled before it finished"
            raise
        except Exception as exc:  # noqa: BLE001 - one broken sub-agent must not sink the others
            state, text = "failed", f"failed unexpectedly: {type(exc).__name__}: {exc}"
        finally:
            self._answered(sub)
            outcome = SubAgentOutcome(sub.agent_id, sub.role, state, sub.steps, sub.tool_calls, text, sub.queued)
            self.accounting.record(step, outcome, agent.totals if agent else RunTotals())
            emit(ev.SubAgentUpdate(sub.agent_id, sub.role, state, sub.steps, sub.last_tool, first_line(text)))
        return outcome

    def _client(self, agent: AgentSpec | None) -> ChatClient:
        """The run's client, or one for the named agent's own model (same endpoint and request limit)."""
        if agent is None or not agent.model or self.client_for is None:
            return self.client
        return self.client_for(agent.model)

    def _gate(self, sub: _SubAgent) -> str | None:
        if self.budget.take():
            sub.tool_calls += 1
            return None
        sub.out_of_budget = True
        return self.budget.refusal()

    def _asks(self, sub: _SubAgent, step: int) -> None:
        """A sub-agent's step asks the model: note the endpoint's limit now, and whether the swarm's own
        requests already fill it (then this one queues at the limiter)."""
        self._answered(sub)
        limit = self.client.limiter.stats().limit
        full = self._asking >= limit
        sub.queued = sub.queued or full
        self.accounting.ask(step, limit, full)
        self._asking += 1
        sub.asking = True

    def _answered(self, sub: _SubAgent) -> None:
        if sub.asking:
            sub.asking = False
            self._asking -= 1

    async def _drive(self, agent: Agent, sub: _SubAgent, emit: Emit, step: int) -> tuple[SubState, str]:
        run = agent.run(sub.opening + TASK_HEADING + sub.task)
        try:
            async for event in run:
                if isinstance(event, ev.Done):
                    return judge(event.result, self.limits.max_steps)
                if isinstance(event, ev.StepStart):
                    sub.steps = event.step
                    self._asks(sub, step)
                    emit(ev.SubAgentUpdate(sub.agent_id, sub.role, "running", sub.steps, sub.last_tool))
                elif isinstance(event, ev.ToolCallStart):
                    self._answered(sub)
                    sub.last_tool = event.summary
                    emit(event)
                    emit(ev.SubAgentUpdate(sub.agent_id, sub.role, "running", sub.steps, sub.last_tool))
                elif isinstance(event, ev.ToolCallEnd):
                    emit(event)
                    if sub.out_of_budget:
                        return "failed", (
                            f"stopped after {sub.steps} steps: the swarm's budget of {self.budget.limit} "
                            "tool calls is used up"
                        )
                elif isinstance(event, (ev.Error, ev.ApprovalRequest, ev.TodoUpdate)):
                    emit(event)  # a sub-agent's todo list shows on its board line
        finally:
            await run.aclose()
        return "failed", "ended without a result"


def _merge_wave(wave: WaveWorktrees, outcomes: list[SubAgentOutcome]) -> None:
    """Merge the sub-agents' changes back in the order they were started, then tidy the worktrees up."""
    try:
        for outcome in outcomes:
            if outcome.state == "cancelled":
                wave.discard(outcome.agent_id)
                continue
            outcome.merge_note = wave.merge(outcome.agent_id).describe()
    finally:
        wave.close()


def _discard_wave(wave: WaveWorktrees, agent_ids: list[str]) -> None:
    from kimicode.vcs.worktrees import WorktreeError

    try:
        for agent_id in agent_ids:
            wave.discard(agent_id)
        wave.close()
    except (WorktreeError, OSError):
        pass  # cancelling must go on; `git worktree prune` tidies leftovers later


def _ignore(event: Any) -> None:
    return None

