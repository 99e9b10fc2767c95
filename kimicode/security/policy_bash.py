"""The decision for a shell command: what its simple commands run, read and write, judged as one line.

Order, per command line: deny rules (also against what wrappers and a literal `bash -c` run); with a deny
rule, a program that cannot be known before it runs; secret paths named by any word; ask rules; writes to
guarded places and protected folders; leaving the sandbox; then what the stance allows — contained by the
sandbox in a trusted folder, yolo, rules and session answers, or proven read-only. What is left is asked
(or refused headless) with every reason at once.

Invariants:
- Each simple command is judged, those inside substitutions included; an allow rule covers only the simple
  commands it matches, never the whole line.
- A command that cannot be parsed, or uses constructs not analysed, is never proven read-only or covered by
  an answer for one of its parts.
- Only a rule spelling out the very command (no glob) opens a guarded place; only yolo in a trusted folder
  writes a protected one; only --allow-escalation leaves the sandbox unasked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kimicode.security import paths as P
from kimicode.security import scope as S
from kimicode.security.decision import Action, Decision, allow
from kimicode.security.judge import ESCALATION, WITH_Y, Judge, shown
from kimicode.security.shell_types import ParsedCommand, SimpleCommand


def decide_bash(judge: Judge, args: dict[str, Any], workspace: Path) -> Decision:
    from kimicode.security.runs import runs, unknown_reason
    from kimicode.security.shell import parse_command

    rules = judge.rules
    command = str(args.get("command") or "")
    escalate = str(args.get("escalate") or "").strip()
    parsed = parse_command(command)
    parts = parsed.commands
    # Deny and ask rules also see what a wrapper runs (`sudo rm x`, `find . -exec rm {} +`, `xargs rm`)
    # and what a literal `bash -c 'rm x'` runs.
    every = runs(parsed)
    for argv in every:
        rule = rules.find(Action.DENY, "bash", words=argv)
        if rule is not None:
            return judge.by_rule(rule)
    deny = rules.first_patterned(Action.DENY, "bash")
    if deny is not None:
        # A deny rule matches names; a program decided at run time could be the denied one in disguise.
        unknown = unknown_reason(parsed, workspace)
        if unknown:
            why = f"{unknown}; the rule {deny.describe()} cannot be checked against it"
            if judge.yolo or judge.headless:
                return Decision(Action.DENY, why, deny.describe(), False)
            return Decision(Action.ASK, why, deny.describe(), False)
    secret = _secret_words(judge, parts, workspace)
    if secret:
        return Decision(Action.DENY, f"names {secret}; only an allow rule for the command opens it", "", False)
    for argv in every:
        rule = rules.find(Action.ASK, "bash", words=argv)
        if rule is not None:
            return judge.by_rule(rule)
    _, part_problems = judge.read_only(parsed, workspace, words_checked=True)
    read_only = [not why for why in part_problems]
    writes = _write_targets(judge, parsed, parts, read_only, workspace)
    explicit = [rules.for_command(Action.ALLOW, part, patterned=True) is not None for part in parts]
    exact = [rules.spells_out(part) for part in parts]
    if not all(exact):  # only a rule spelling out this very command (no glob) opens a guarded place
        guarded = next((why for why in (judge.guarded(path, workspace) for path, _ in writes) if why), "")
        if guarded:
            named = f"a rule such as bash({' '.join(parts[0].text.split())})"
            remedy = named if len(parts) == 1 else "a rule naming the command"
            return judge.out_of_scope(f"writes {guarded}", remedy)
    protected = next((why for why in (judge.protected_reason(path, workspace) for path, _ in writes) if why), "")
    if protected and not (judge.yolo and judge.trusted):
        why = f"writes {protected}"
        if escalate:
            why += f"; asks to run outside the sandbox: {escalate}"
        if judge.headless:
            return Decision(Action.DENY, f"{why}; only a trusted folder with -y allows it", "", False)
        return Decision(Action.ASK, why, "", False)
    if escalate and not judge.allow_escalation:
        why = f"asks to run outside the sandbox: {escalate}"
        if judge.headless:
            return Decision(Action.DENY, f"{why}; {ESCALATION}", "", False)
        return Decision(Action.ASK, why, "", False)
    contained = judge.sandboxed() and not escalate
    if judge.yolo and not contained:
        # Without the sandbox, what the command is known to write must lie in the workspace (or --add-dir).
        bases = judge.bases(workspace)
        outside = [
            path for path, certain in writes
            if certain and not S.in_scope(path, bases) and not P.inside(path, Path("/dev"))  # /dev/null, /dev/stderr
        ]
        if outside and not (all(explicit) or all(exact)):
            return judge.out_of_scope(
                f"writes outside the workspace ({shown(outside[0])})", f"--add-dir {shown(outside[0].parent)}"
            )
    if contained and judge.trusted:
        return allow("contained by the sandbox")
    if judge.yolo:
        return allow("yolo approves leaving the sandbox" if escalate else "yolo")
    new = [
        (part, why)
        for part, why in zip(parts, part_problems, strict=True)
        if why and rules.for_command(Action.ALLOW, part) is None
    ]
    problems = _problems(parsed, [part for part, _ in new], new[0][1] if new else "")
    if not problems:
        if any(not ro for ro in read_only):
            return allow("approved")
        # Proven read-only. Where nothing may write, the sandbox holds the workspace read-only too.
        return Decision(
            Action.ALLOW, "read-only", read_only_everything=judge.headless or judge.stance == "plan"
        )
    why = "; ".join(problems)
    if judge.headless:
        if why.startswith("runs a shell command"):
            why = why.replace("runs a shell command", "not a read-only command", 1)
        else:
            why = f"{why}: not read-only"
        return Decision(Action.DENY, f"{why}; {WITH_Y}")
    return Decision(Action.ASK, why, "", bool(new))


def _problems(parsed: ParsedCommand, new: list[SimpleCommand], first_why: str) -> list[str]:
    """Why a command line is asked for: `new` are its simple commands neither read-only nor approved."""
    problems: list[str] = []
    if parsed.error:
        problems.append(f"cannot be parsed ({parsed.error})")
    elif parsed.opaque:
        problems.append("uses shell constructs kimicode does not analyse")
    if new and len(parsed.commands) == 1 and not problems:
        problems.append(f"runs a shell command ({first_why})")
    elif new:
        problems.append("runs " + ", ".join(_quote(part.text) for part in new) + ", not approved yet")
    if parsed.has_substitution:
        problems.append("runs a command substitution")
    elif parsed.evaluates:
        problems.append("evaluates arithmetic or an array subscript, which can run commands")
    if parsed.file_writes:
        problems.append("writes to " + ", ".join(parsed.file_writes))
    if not parsed.commands and not problems:
        problems.append("runs nothing kimicode can check")
    return problems


def _secret_words(judge: Judge, parts: Sequence[SimpleCommand], workspace: Path) -> str:
    home = judge.resolved_user_home()
    for part in parts:
        if judge.rules.for_command(Action.ALLOW, part, patterned=True) is not None:
            continue  # a rule that names this very command opens what it reads
        literal = part.literal[1:] if part.literal else (True,) * (len(part.words) - 1)
        targets = part.words[1:] + tuple(r.target for r in part.redirects)
        plain_flags = (*literal, *(True,) * len(part.redirects))
        for word, plain in zip(targets, plain_flags, strict=False):
            if not plain:
                # An expanded word keeps its source text: `"$HOME"/.ssh/id_rsa` is ~/.ssh/id_rsa all the same.
                word = word.replace('"', "")
            if P.is_process_environment(word):  # `cat /proc/$PPID/environ`: a variable hides nothing here
                return P.PROCESS_ENVIRONMENT
            path = P.expand_word(word, workspace, home)
            if path is not None:
                secret = P.secret_reason(path, judge.home, home)
                if secret:
                    return secret
    return ""


def _write_targets(
    judge: Judge, parsed: ParsedCommand, parts: Sequence[SimpleCommand], read_only: list[bool], workspace: Path
) -> list[tuple[Path, bool]]:
    """What the command may write, each with whether that is certain: output redirections, the targets of
    `cp`, `tee`, `rm` ... and `git config` files are; any path a command that is not read-only names may
    be (`python x.py ~/.bashrc`)."""
    home = judge.resolved_user_home()
    words: list[tuple[str, bool]] = [(w, True) for w in parsed.file_writes]
    for part, ro in zip(parts, read_only, strict=True):
        words.extend((r.target, True) for r in part.redirects if r.op not in ("<", "<<", "<<<"))
        words.extend((w, True) for w in S.command_writes(part.words))
        if not ro:
            words.extend((w, False) for w in part.words[1:])
    found: list[tuple[Path, bool]] = []
    for word, certain in words:
        path = P.expand_word(word, workspace, home) if not os.path.isabs(word) else Path(os.path.normpath(word))
        if path is None and word in P.PROTECTED_FILES:
            path = workspace / word
        if path is not None:
            found.append((path, certain))
    return found


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f"`{text[:80]}{'…' if len(text) > 80 else ''}`"

