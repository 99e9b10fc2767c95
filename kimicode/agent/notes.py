"""What the agent itself says to the model: notes added to the history, and why a call was not run.

Every text here reaches the model verbatim, so changing one changes the request bytes.
"""

from __future__ import annotations

# A reply with nothing in it, or one the endpoint cut at the output limit, gets one more request with
# one of these notes; a second in a row ends the run as an error instead of passing for an answer.
EMPTY_REPLY_NOTE = (
    "Your last reply was empty: no text and no tool call. Continue the task: call a tool, or give your "
    "final answer as text."
)
LENGTH_REPLY_NOTE = (
    'Your last reply was cut off at the output limit (finish_reason "length") and was discarded, tool calls '
    "included. Reply again, shorter: keep reasoning and text brief, and split large file contents over "
    "several smaller tool calls (createfile with the first part, then insert the rest)."
)

# Said to the model when the approval stance enters or leaves plan mode (policy.py decides what runs).
PLAN_MODE_ON_NOTE = (
    "[Plan mode is on] The user wants a plan before any change. Do not edit files or run commands that change "
    "anything (they are refused). Read what you need (view, read-only commands, screenshot), then call "
    "propose_plan with a concise plan: the steps, the files involved, how you will verify. The user accepts, "
    "edits or rejects it."
)
PLAN_MODE_OFF_NOTE = "[Plan mode is off] You may change files and run commands again (they may ask the user first)."
PLAN_REFUSAL = (
    "This {name} call was not run: you are in plan mode, where nothing may change. Keep to reading (view, "
    "read-only commands, screenshot) and call propose_plan with your plan; the work starts once the user "
    "accepts it."
)

# The result of each call of one reply still running when the user interrupted the turn.
INTERRUPTED_CALL = "Interrupted by the user before this call finished."


def unknown_tool(name: str, known: list[str]) -> str:
    return f"Unknown tool '{name}'. Available tools: {', '.join(known)}."


def invalid_json(name: str, msg: str, pos: int) -> str:
    return (
        f"The arguments of this {name} call are not valid JSON ({msg} at character {pos}); "
        "it was not run. Send the call again with complete, valid JSON arguments."
    )


def not_an_object(name: str) -> str:
    return f"The arguments of a {name} call must be a JSON object; it was not run."


def invalid_arguments(name: str, problem: object) -> str:
    return f"Invalid arguments for {name}: {problem}. The call was not run."


def not_approved(name: str, feedback: str) -> str:
    why = f" Reason: {feedback}" if feedback else ""
    return f"The user did not approve this {name} call; it was not run.{why}"


def refused(name: str, reason: str) -> str:
    return (
        f"This {name} call was refused and not run: {reason}. It is not approved in this run; "
        "do what you can without it, and tell the user what they would have to run or allow."
    )


def repeated(name: str, times: int) -> str:
    return (
        f"\n\nNote: you have made this exact {name} call {times} times in this task; "
        "its result will not change. Try a different approach."
    )


def call_crashed(name: str, exc: BaseException) -> str:
    """A call that raised before or around its tool (a policy that could not read a path, a gate)."""
    return (
        f"This {name} call failed unexpectedly: {type(exc).__name__}: {exc}. "
        "Check its arguments, or do it another way."
    )


def tool_crashed(name: str, exc: BaseException) -> str:
    """A tool's own bug."""
    return f"{name} failed unexpectedly: {type(exc).__name__}: {exc}"
