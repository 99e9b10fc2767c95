"""The ``propose_plan`` tool: how a plan made in plan mode is handed to the user.

Plan mode (the policy's "plan" stance) lets the model read but change nothing. When its plan is ready it
calls ``propose_plan`` with the plan as markdown; the tool asks the user through ``ctx.review_plan`` (the
REPL shows the plan: accept and continue asking first, accept with auto-edit, edit it, or reject with a
reason). The answer comes back as the tool result, so the plan — as accepted or edited — stays in the
conversation above the work that follows. With nobody to ask (headless ``--plan``) the plan ends the run
and is its result.

The tool is offered only while the stance is "plan" (``plan_only``), so it costs nothing otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.params import Str, ToolParams
from kimicode.tools.plan_review import PlanReview as PlanReview
from kimicode.tools.plan_review import PlanReviewer as PlanReviewer

STANCE_WORDS = {
    "ask": "file edits and commands ask the user first",
    "auto-edit": "file edits in the workspace run without asking; commands still ask",
    "yolo": "every action runs without asking",
}


class ProposePlanParams(ToolParams):
    plan: Str


class ProposePlanTool(Tool):
    name: ClassVar[str] = "propose_plan"
    description: ClassVar[str] = (
        "Plan mode: hand your finished plan (markdown: steps, files, how to verify) to the user, who "
        "accepts, edits or rejects it."
    )
    params: ClassVar[type[ProposePlanParams]] = ProposePlanParams
    read_only: ClassVar[bool] = True
    plan_only: ClassVar[bool] = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            plan = ProposePlanParams.parse(args).plan.strip()
        except ToolError as exc:
            return ToolResult(f"Error: {exc}", is_error=True)
        if not plan:
            return ToolResult("Error: 'plan' is empty: write the plan as markdown", is_error=True)
        if ctx.review_plan is None:
            return ToolResult(plan, submitted=True)  # nobody to ask: the plan is the run's result
        review = await ctx.review_plan(plan)
        if not review.accepted:
            why = f" Their reason: {review.feedback}" if review.feedback.strip() else ""
            return ToolResult(
                f"The user rejected this plan; you are still in plan mode.{why} Revise the plan (read more if "
                "needed) and call propose_plan again.",
                is_error=True,
            )
        how = STANCE_WORDS.get(review.stance, review.stance)
        text = f"The user accepted the plan. Plan mode is over ({how}): carry the plan out now."
        if review.plan.strip() != plan:
            text += f"\n\nThe user edited it; follow this version:\n\n{review.plan.strip()}"
        return ToolResult(text)

    def summary(self, args: dict[str, Any]) -> str:
        return "propose_plan"
