"""What the swarm says: each sub-agent's role in its system prompt, and the orchestrator's spawn_agents result.

Invariants:
- A sub-agent's task reaches it verbatim as its user message; only the role prompt here is added, to its
  system prompt.
- All results together stay within RESULTS_BUDGET_CHARS (each keeps at least MIN_RESULT_CHARS, its head and
  tail); notes (agents not started, worktrees not used) come first.
"""

from __future__ import annotations

from kimicode.agent import events as ev
from kimicode.agent.swarm_accounting import SubAgentOutcome, SubState
from kimicode.tools.base import truncate_middle

# Characters of all sub-agent results together in one spawn_agents result, and the least one gets.
RESULTS_BUDGET_CHARS = 40_000
MIN_RESULT_CHARS = 800

# The sub-agents' system prompt is the same for every plain sub-agent of a run, byte for byte, and so is
# their tool list: what sets one apart (role, id, private workspace) opens its user message, before its task.
# An endpoint that caches prompts by prefix then serves all but the task from its cache.
SUB_AGENT_PROMPT = """\
# You are a sub-agent

You are one of several agents working in parallel for an orchestrating agent, in the same workspace. Your
role, your id and your task are in the user message: do exactly that task, nothing more. Other agents may be
editing other files at the same time: touch only the files your task needs. Nobody will answer questions, so
decide sensibly and note assumptions. You have at most {max_steps} steps. When the task is done, call
`submit` with a summary of what you did, what you found and what the orchestrator must know (paths,
results, problems).
"""

ROLE_PROMPT = """\
# Your role: {role}

You are sub-agent {agent_id}.
"""

WORKTREE_PROMPT = """
Your workspace is {workspace}: a private git worktree holding a copy of the shared workspace as it was when
you started. Work only there (use relative paths, or absolute paths under it); never write to the original
workspace directly. When you finish, your changes are merged back into the shared workspace for you.
"""

TASK_HEADING = "\n# Your task\n\n"


def judge(result: ev.RunResult, max_steps: int) -> tuple[SubState, str]:
    if result.subtype == "success":
        return "done", result.result.strip() or "(finished without a summary)"
    if result.subtype == "error_max_steps":
        last = result.result.strip()
        return "failed", f"stopped at its step limit ({max_steps} steps)" + (f"; last said: {last}" if last else "")
    return "failed", f"failed: {result.result.strip()}"


def format_outcomes(outcomes: list[SubAgentOutcome], notes: list[str]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    tally = ", ".join(f"{n} {state}" for state, n in counts.items())
    lines = [*notes, f"{len(outcomes)} sub-agents ran ({tally})."]
    per_result = max(MIN_RESULT_CHARS, RESULTS_BUDGET_CHARS // max(len(outcomes), 1))
    for outcome in outcomes:
        lines.append("")
        lines.append(f"## {outcome.agent_id} ({outcome.role}): {outcome.state} after {outcome.steps} steps")
        lines.append(truncate_middle(outcome.text, per_result))
        if outcome.merge_note:
            lines.append(outcome.merge_note)
    return "\n".join(lines)


def first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:200] if stripped else ""
