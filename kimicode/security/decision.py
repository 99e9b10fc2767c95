"""What the policy answers for one tool call: run it, ask the user, or refuse it, with the reason shown.

Invariants:
- `Action` is a str-valued enum: `Action.ASK == "ask"`, it formats and serializes as "ask", so callers that
  compare with or print the plain strings keep working and nothing written anywhere changes.
- A Decision with `rememberable=False` is asked every time: neither "yes for this session" nor "always"
  may stand for it (protected writes, sandbox escalations, rules that ask).
- Strictness orders the actions allow < ask < deny; combining two decisions keeps the stricter one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


PLAN_RULE = "plan mode"

_STRICTNESS = {Action.ALLOW: 0, Action.ASK: 1, Action.DENY: 2}


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # one line: why (names the rule or the path class)
    rule: str = ""  # the rule that decided, with its source
    rememberable: bool = True  # False: a session ("a") or "always" answer must not cover it
    # Allowed as read-only where nothing may write (headless without -y, plan mode): the command runs in the
    # sandbox with the whole file system read-only, the workspace included, so a misjudged command cannot write.
    read_only_everything: bool = False

    def __post_init__(self) -> None:
        # A plain "allow" given by a caller becomes the enum member: one type, whoever built the decision.
        object.__setattr__(self, "action", Action(self.action))

    @property
    def planning(self) -> bool:
        """Refused because the stance is "plan" (the model is told to plan instead)."""
        return self.rule == PLAN_RULE


def allow(reason: str, rule: str = "") -> Decision:
    """Run without asking; `rule`: the rule that allowed it, as described to the user."""
    return Decision(Action.ALLOW, reason, rule)


def stricter(first: Decision, second: Decision) -> Decision:
    return second if _STRICTNESS[second.action] > _STRICTNESS[first.action] else first
