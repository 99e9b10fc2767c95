"""The user's answer to an approval question. What needs asking is decided in kimicode.security.policy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ApprovalDecision:
    approved: bool
    feedback: str = ""  # a rejection's reason, passed on to the model
    remember: bool = False  # approve the same kind of call for the rest of the session
    always: bool = False  # also keep it as an allow rule for this project (saved for later sessions)
