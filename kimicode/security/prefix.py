"""What "yes for this session" records for a simple command: its prefix (`git status`, `npm test`, `sudo rm`).

Invariants:
- A prefix is compared for equality, never as a pattern; the program stays as written (`/tmp/evil/git` is not
  `git`) and leading assignments stay in (`PATH=/tmp/x git` is not `git`).
- What a command runs or loads is part of its prefix: a wrapper's inner command, `find -exec`'s command and
  `-delete`, an interpreter's inline code or module. A wrapper with options not understood (launchers.py)
  gives the whole command line, so an approval covers that line only.
"""

from __future__ import annotations

from kimicode.security.launchers import FIND_RUNS, SUBCOMMAND_PROGRAMS, basename, interpreter_options, unwrap
from kimicode.security.shell_types import SimpleCommand

# These change the shell itself; their whole text is the prefix.
_EXACT_PREFIX = frozenset(
    {"export", "declare", "typeset", "local", "readonly", "unset", "set", "shopt", "ulimit", "umask"}
)


def _looks_like_subcommand(word: str) -> bool:
    return bool(word) and not word.startswith(("-", "+", ".", "~")) and "/" not in word and "=" not in word


def _prefix_words(words: tuple[str, ...]) -> list[str]:
    program = words[0]
    name = basename(program)
    if name in _EXACT_PREFIX:
        return list(words)
    wrapped = unwrap(words)
    if wrapped is not None:
        start, understood = wrapped
        if not understood:
            return list(words)
        inner = words[start:]
        return list(words[:start]) + (_prefix_words(inner) if inner else [])
    if name == "find":
        # find runs nothing unless told to; what it is told to run or delete is what was approved.
        kept = [program]
        for i, word in enumerate(words[1:], 1):
            if word in FIND_RUNS and i + 1 < len(words):
                kept += [word, *(w for w in _prefix_words(words[i + 1 :]) if w != "{}")]
            elif word in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"):
                kept.append(word)
        return kept
    code_options = interpreter_options(name)
    if code_options is not None:
        kept = [program]
        for i, word in enumerate(words[1:], 1):
            if word in code_options:
                return kept + list(words[i : i + 2])
            kept.append(word)
            if not word.startswith("-"):
                # the script, and its subcommand if any (`python manage.py migrate`)
                if i + 1 < len(words) and _looks_like_subcommand(words[i + 1]):
                    kept.append(words[i + 1])
                return kept
        return kept
    spec = SUBCOMMAND_PROGRAMS.get(name)
    if spec is None:
        if len(words) > 1 and _looks_like_subcommand(words[1]):
            return [program, words[1]]
        return [program]
    kept = [program]
    i = 1
    while i < len(words) and words[i].startswith("-") and words[i] != "--":
        kept.append(words[i])
        if words[i] in spec.arg_options and i + 1 < len(words):
            kept.append(words[i + 1])
            i += 1
        i += 1
    if i < len(words) and _looks_like_subcommand(words[i]):
        kept.append(words[i])
        if words[i] in spec.runs and i + 1 < len(words):
            rest = words[i + 1 :]
            kept += _prefix_words(rest) if not rest[0].startswith("-") else [rest[0]]
    return kept


def command_prefix(cmd: SimpleCommand) -> str:
    """What "yes for this session" records: the program and its subcommand ("git status", "npm test", "pytest").

    The program stays as written (`/tmp/evil/git status` is not `git status`). Leading assignments stay in
    (`PATH=/tmp/x git status` is not `git status`). Wrappers include what they run (`sudo rm`, `xargs rm`,
    `timeout 10 pytest`); `find` includes what it runs or deletes (`find -exec rm`, `find -delete`);
    interpreters include code given inline (`python -c CODE`). Compare prefixes for equality.
    """
    if not cmd.words:
        return " ".join(cmd.assignments)
    return " ".join([*cmd.assignments, *_prefix_words(cmd.words)])
