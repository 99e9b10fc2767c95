"""What sub-agents used, accounted as Kimi K2.5's PARL work does:

    CriticalSteps = Σ over orchestrator steps t of (S_main(t) + max_i S_sub,i(t))

with S_main(t) = 1 and the max over the sub-agents spawned in step t (0 when none were).

That formula assumes every sub-agent of a step talks to the model at once. Every sub-agent starts, but
their requests pass the endpoint's adaptive limit (kimicode/llm/limiter.py); when a step's sub-agents ask
for more than it allows, some queue there and the real critical path is longer. Each sub-agent step notes
the limit as it asks and whether the swarm's own unanswered requests already fill it. ``capped_figures``
reports, per orchestrator step whose sub-agents queued at all, with that step's width W = the mean of the
limits its sub-agents' steps saw (the limit over time, sampled per request):
``forced_waves`` (waves beyond the first: ceil(sub-agents / W) - 1), ``critical_steps_capped`` (the same
sum with the step's sub-agents list-scheduled, in spawn order, on W slots) and ``queued_sub_agents`` (how
many had a request that found the limit full). A step whose sub-agents never queued adds no wave and its
uncapped longest path; a run where nothing queued reports 0 waves, 0 queued and the uncapped path.

Invariants:
- Every sub-agent that was started is recorded exactly once, whatever its end (done, failed, cancelled).
- The figures are pure functions of the records: nothing here runs or waits.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Literal

from kimicode.agent import events as ev
from kimicode.agent.accounting import RunTotals

SubState = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclass
class SubAgentOutcome:
    agent_id: str
    role: str
    state: SubState
    steps: int
    tool_calls: int
    text: str
    queued: bool = False  # one of its model requests found the endpoint's limit full
    merge_note: str = ""  # worktree isolation: what of its changes was merged, or what conflicted


@dataclass
class RunAccounting:
    """Steps, tool calls and usage of the sub-agents of one orchestrator run."""

    longest_by_step: dict[int, int] = field(default_factory=dict)  # orchestrator step -> max sub steps
    # orchestrator step -> (spawn order, steps) of each of its sub-agents
    steps_by_step: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    queued: int = 0  # sub-agents with a model request that found the endpoint's limit full
    # orchestrator step -> limits its sub-agents' steps saw as they asked the model, and how many found it full
    limits_by_step: dict[int, list[int]] = field(default_factory=dict)
    full_by_step: dict[int, int] = field(default_factory=dict)
    sub_agents: int = 0
    failed: int = 0
    sub_steps: int = 0
    sub_tool_calls: int = 0
    usage: RunTotals = field(default_factory=RunTotals)

    def record(self, orchestrator_step: int, outcome: SubAgentOutcome, totals: RunTotals) -> None:
        self.longest_by_step[orchestrator_step] = max(self.longest_by_step.get(orchestrator_step, 0), outcome.steps)
        order = int(outcome.agent_id.rpartition("-")[2] or 0)
        self.steps_by_step.setdefault(orchestrator_step, []).append((order, outcome.steps))
        self.sub_agents += 1
        self.queued += outcome.queued
        self.failed += outcome.state != "done"
        self.sub_steps += outcome.steps
        self.sub_tool_calls += outcome.tool_calls
        self.usage.prompt_tokens += totals.prompt_tokens
        self.usage.completion_tokens += totals.completion_tokens
        self.usage.cached_tokens += totals.cached_tokens
        self.usage.cost += totals.cost


    def ask(self, orchestrator_step: int, limit: int, full: bool) -> None:
        """A sub-agent step of ``orchestrator_step`` asked the model while the limit was ``limit``."""
        self.limits_by_step.setdefault(orchestrator_step, []).append(limit)
        self.full_by_step[orchestrator_step] = self.full_by_step.get(orchestrator_step, 0) + full


def annotate_result(result: ev.RunResult, accounting: RunAccounting | None = None) -> None:
    """Put critical_steps, total_steps and total_tool_calls (and the swarm's usage) into the result."""
    accounting = accounting or RunAccounting()
    main_steps = result.num_steps
    main_tool_calls = int(result.usage.get("tool_calls", 0))
    result.extra["critical_steps"] = main_steps + sum(accounting.longest_by_step.values())
    result.extra["total_steps"] = main_steps + accounting.sub_steps
    result.extra["total_tool_calls"] = main_tool_calls + accounting.sub_tool_calls
    if accounting.sub_agents:
        usage = result.usage
        sub = accounting.usage
        usage["input_tokens"] = usage.get("input_tokens", 0) + sub.prompt_tokens
        usage["output_tokens"] = usage.get("output_tokens", 0) + sub.completion_tokens
        usage["cached_input_tokens"] = usage.get("cached_input_tokens", 0) + sub.cached_tokens
        usage["cost_usd"] = round(usage.get("cost_usd", 0.0) + sub.cost, 6)
        usage["tool_calls"] = main_tool_calls + accounting.sub_tool_calls
        result.extra["sub_agents"] = accounting.sub_agents
        result.extra["sub_agents_failed"] = accounting.failed


def capped_figures(accounting: RunAccounting, main_steps: int) -> dict[str, int]:
    """What the endpoint's limit did to the critical path: extra waves, and the path with queueing."""
    waves = 0
    critical = main_steps
    for step, runs in accounting.steps_by_step.items():
        limits = accounting.limits_by_step.get(step, [])
        if not accounting.full_by_step.get(step) or not limits:
            critical += max((steps for _, steps in runs), default=0)
            continue
        slots = max(1, round(sum(limits) / len(limits)))
        waves += -(-len(runs) // slots) - 1
        critical += _makespan([steps for _, steps in sorted(runs)], slots)
    return {"forced_waves": waves, "critical_steps_capped": critical, "queued_sub_agents": accounting.queued}


def _makespan(durations: list[int], slots: int) -> int:
    """Steps until the last finishes when each starts, in order, on the first free of ``slots``."""
    free_at = [0] * min(slots, len(durations))
    heapq.heapify(free_at)
    end = 0
    for duration in durations:
        start = heapq.heappop(free_at)
        end = max(end, start + duration)
        heapq.heappush(free_at, start + duration)
    return end
