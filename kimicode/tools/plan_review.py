"""The user's answer to a plan proposed in plan mode, and who gives it (a front end's reviewer).

Below ``base``: the tool context holds the reviewer, and nothing here needs the tools.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class PlanReview:
    accepted: bool
    plan: str  # the plan as the user left it (edited or not)
    stance: str = "ask"  # accepted: the stance the work continues in ("ask" or "auto-edit")
    feedback: str = ""  # rejected: why


PlanReviewer = Callable[[str], Awaitable[PlanReview]]
