"""Read-only is a proof, not a list: a command line that only reads, proven part by part.

A command is read-only only when every simple command in it is a program named in programs.py, given only options not
listed as unsafe for it (each with the reason, as data), and nothing executes while bash expands the words:
no substitution anywhere, no arithmetic or array subscript (bash evaluates `a[$(cmd)]` in arithmetic, even
in a quoted operand of `[[ x -eq y ]]` or `test -v`), no expansion that assigns. Redirections read from a
file in the workspace or write to /dev/null; a glob stays in the workspace and matches no secret, no link out
of it and no option. Everything else, known or not, is not read-only: default deny.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from kimicode.security import paths as P
from kimicode.security.lazy_re import LazyPattern
from kimicode.security.programs import NOT_READ_ONLY, PROGRAMS, Where, unsafe_option
from kimicode.security.shell_types import ParsedCommand, SimpleCommand

__all__ = ["Where", "is_read_only", "read_only_problems"]


# ------------------------------------------------------------------------------------------- the proof

# Patterns compiled on first use: most commands need none of them (lazy_re.py says why).
# A word bash expands by globbing only: no quotes, escapes, variables, braces or character classes.
_GLOB_WORD = LazyPattern(r"^~?[A-Za-z0-9_./@%+,:=^-]*[*?][A-Za-z0-9_./@%+,:=^*?-]*$")
# A word that is one variable (and a literal tail): `$HOME`, "${HOME}/x".
_VARIABLE_WORD = LazyPattern(r'^"?\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})[A-Za-z0-9_./@%+,:=-]*"?$')
# Double-quoted text with plain variables in it; what evaluates or substitutes is refused by the parser.
_QUOTED_TEXT = LazyPattern(r'^"[^"`\\]*"$')
_PRINTERS = frozenset({"echo"})
_TILDE_WORD = LazyPattern(r"^~(?:/[A-Za-z0-9_./@%+,:=-]*)?$")
_FD_TARGET = LazyPattern(r"^[0-9]*-?$")
_INPUT = frozenset({"<", "0<"})
_EXPANDING = frozenset("$`*?[{~\\'\"")
_DOTS_GLOB = LazyPattern(r"^\.[*?]+$")
_GLOB_LIMIT = 2000  # matches looked at; a glob matching more is not proven harmless


def is_read_only(parsed: ParsedCommand, where: Where | None = None) -> bool:
    """True when the whole command line is proven read-only (see read_only_problems)."""
    line, parts = read_only_problems(parsed, where or _here())
    return not line and not any(parts)


def read_only_problems(parsed: ParsedCommand, where: Where) -> tuple[str, list[str]]:
    """Why the command line as a whole is not read-only, and why each simple command is not ("" when it is)."""
    line = ""
    if parsed.error:
        line = f"cannot be parsed ({parsed.error})"
    elif parsed.opaque:
        line = "uses shell constructs kimicode does not analyse"
    elif parsed.has_substitution:
        line = "runs a command substitution"
    elif parsed.evaluates:
        line = "evaluates arithmetic, an array subscript or an assigning expansion while expanding words"
    elif not parsed.commands:
        line = "runs nothing kimicode knows"
    cwds = [Path(os.path.realpath(where.workspace))]
    problems: list[str] = []
    for cmd in parsed.commands:
        why = _part_problem(cmd, cwds, where)
        if not why and cmd.words and cmd.words[0] == "cd":
            targets = _cd_targets(cmd, cwds)
            if targets:
                cwds = cwds + targets  # later parts may run in any of them
            else:
                why = "cd to a folder outside the workspace, or one only known when it runs"
        problems.append(why)
    return line, problems


def _here() -> Where:
    from kimicode.config import kimicode_home

    return Where(Path.cwd(), kimicode_home(), P.user_home())


def _part_problem(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
    if cmd.assignments:
        return "sets variables for the command"
    if not cmd.words:
        return "runs nothing kimicode knows"
    literal = cmd.literal or (True,) * len(cmd.words)
    program = cmd.words[0]
    if not literal[0]:
        return "the program is decided when it runs"
    spec = PROGRAMS.get(program)
    if spec is None:
        return NOT_READ_ONLY.get(program, f"{program} is not a program kimicode knows to only read")
    for redirect in cmd.redirects:
        why = _redirect_problem(redirect.op, redirect.target, cwds, where)
        if why:
            return why
    options_matter = bool(spec.unsafe) or spec.check is not None
    for word, plain in zip(cmd.words[1:], literal[1:], strict=True):
        if program == "[[" and not plain:
            continue  # no splitting or globbing inside [[ ]]; what evaluates is judged by _test_ok and the parser
        why = _word_problem(program, word, plain, options_matter, cwds, where)
        if why:
            return why
    why = unsafe_option(cmd, spec)
    if why:
        return why
    if spec.check is not None:
        why = spec.check(cmd, cwds, where)
        if why:
            return why
    return ""


def _word_problem(program: str, word: str, plain: bool, options_matter: bool, cwds: list[Path], where: Where) -> str:
    if plain:
        return _secret(word, cwds, where)
    if _GLOB_WORD.match(word):
        return _glob_problem(word, cwds, where)
    if options_matter and not word.startswith("[["):
        return f"{_short(word)} is expanded when it runs and could become an option"
    if _VARIABLE_WORD.match(word) or _TILDE_WORD.match(word):
        return _secret(word.strip('"'), cwds, where)
    if program in _PRINTERS and _QUOTED_TEXT.match(word):
        return ""  # "Done: $name": printed, never opened, split or globbed
    return f"{_short(word)} is expanded in a way kimicode does not follow"


def _secret(word: str, cwds: list[Path], where: Where) -> str:
    if P.is_process_environment(word):
        return P.PROCESS_ENVIRONMENT
    for index, cwd in enumerate(cwds):
        if index == 0 and where.words_checked:
            continue  # the caller judged every word against the workspace already
        path = P.expand_word(word, cwd, where.user_home)
        if path is not None:
            why = P.secret_reason(path, where.kimicode_home, where.user_home)
            if why:
                return f"names {why}"
    return ""


def _glob_problem(word: str, cwds: list[Path], where: Where) -> str:
    # A glob is expanded here as bash would, and every match judged: it must stay in the workspace (no link
    # out of it), name no secret, and not look like an option.
    pattern = os.path.join(str(where.user_home), word[2:]) if word.startswith("~/") else word
    if pattern.startswith("~"):
        return f"{_short(word)}: a glob outside the workspace"
    first = min(i for i in (pattern.find("*"), pattern.find("?")) if i >= 0)
    literal_dir = pattern[:first].rsplit("/", 1)[0] if "/" in pattern[:first] else ""
    # `..` after the first wildcard, or a part such as `.*` that older bash lets match `..`, climbs out of the
    # folders the glob is checked in.
    if any(_DOTS_GLOB.match(part) for part in pattern.split("/")) or ".." in pattern[first:].split("/"):
        return f"{_short(word)}: a glob that can climb out of the folders it matches"
    homes = _homes_inside(str(where.workspace), str(where.user_home), str(where.kimicode_home))
    for cwd in cwds:
        base = Path(os.path.normpath(cwd / (literal_dir or "/" if pattern.startswith("/") else literal_dir or ".")))
        if not P.is_inside_workspace(base, where.workspace):
            return f"{_short(word)}: a glob outside the workspace"
        for count, (match, linked) in enumerate(_expand(pattern, first, cwd, base)):
            if count >= _GLOB_LIMIT:
                return f"{_short(word)} matches too many files to check"
            if match.startswith("-"):
                return f"{_short(word)} matches {match!r}, which would be read as an option"
            literal = Path(os.path.normpath(os.path.join(cwd, match)))
            if linked and not P.is_inside_workspace(literal, where.workspace):
                return f"{_short(word)} matches {match}, which leads out of the workspace"
            # Below the workspace and reached without a link, a secret lies in the user's or kimicode's home
            # (when one of them is inside the workspace) or has a dot-name (.env files). Checking only those
            # keeps a glob over hundreds of files fast.
            text = str(literal)
            if linked or "/." in "/" + match or any(text == h or text.startswith(h + "/") for h in homes):
                why = P.secret_reason(literal, where.kimicode_home, where.user_home)
                if why:
                    return f"{_short(word)} matches {why}"
    return ""


def _expand(pattern: str, first: int, cwd: Path, base: Path) -> Iterator[tuple[str, bool]]:
    """The glob's matches as bash gives them, each with whether a symbolic link is on its way."""
    if "/" not in pattern[first:]:
        # Wildcards in the last part only (`src/*.py`): one directory listing, whose entries say if they are
        # links; the folders before it were checked as `base`.
        head, _, last = pattern.rpartition("/")
        try:
            entries = list(os.scandir(base))
        except OSError:
            return
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith(".") and not last.startswith("."):
                continue  # bash's * and ? do not match a leading dot
            if fnmatch.fnmatchcase(entry.name, last):
                yield (f"{head}/{entry.name}" if head or pattern.startswith("/") else entry.name), entry.is_symlink()
        return
    import glob  # (here: only a glob over several folders needs it, and the first step imports this module)

    plain: set[str] = set()  # folders known to be no link
    for match in glob.iglob(pattern, root_dir=cwd):
        yield match, _has_link(cwd, match, plain)


def _has_link(cwd: Path, match: str, plain: set[str]) -> bool:
    """Whether any part of `match` (below `cwd`, a real folder, when relative) is a symbolic link."""
    prefix = "/" if match.startswith("/") else ""
    for part in match.split("/"):
        if not part or part == ".":
            continue
        prefix = f"{prefix}/{part}" if prefix not in ("", "/") else f"{prefix}{part}"
        if prefix in plain:
            continue
        try:
            if stat.S_ISLNK(os.lstat(os.path.join(cwd, prefix)).st_mode):
                return True
        except OSError:
            return True  # gone or unreadable: judge it the slow way
        plain.add(prefix)
    return False


@lru_cache(maxsize=16)
def _homes_inside(workspace: str, user_home: str, kimicode_home: str) -> tuple[str, ...]:
    """The user's and kimicode's homes where they lie inside the workspace (their secrets can match a glob)."""
    roots = P.variants(Path(workspace))
    homes = [h for home in (user_home, kimicode_home) for h in P.variants(Path(home))]
    return tuple(str(h) for h in homes if any(P.inside(h, root) for root in roots))


def _redirect_problem(op: str, target: str, cwds: list[Path], where: Where) -> str:
    if op in ("<<", "<<<"):
        return ""  # text given inline; substitutions in it are seen by the parser
    if op.endswith(("&", "&-")) and _FD_TARGET.match(target):
        return ""  # `2>&1`, `>&2`, `>&-`: descriptors, not files
    if target == "/dev/null":
        return ""
    if any(c in target for c in _EXPANDING):
        return f"redirects to or from {_short(target)}, which is expanded when it runs"
    if op not in _INPUT:
        return f"writes to {_short(target)}"
    for cwd in cwds:
        path = Path(os.path.normpath(cwd / target))
        if not P.is_inside_workspace(path, where.workspace):
            return f"reads {_short(target)}, outside the workspace"
        why = P.secret_reason(path, where.kimicode_home, where.user_home)
        if why:
            return f"reads {why}"
    return ""


def _cd_targets(cmd: SimpleCommand, cwds: list[Path]) -> list[Path]:
    """The real folders `cd` moves to when each is inside the workspace (`cwds[0]`, real); [] when any is not
    or cannot be known."""
    operands = [w for w in cmd.words[1:] if w not in ("-P", "-L", "-e", "-@", "--")]
    if len(operands) != 1 or (cmd.literal and not all(cmd.literal[1:])) or operands[0] == "-":
        return []
    root = str(cwds[0])
    targets = [Path(os.path.realpath(cwd / operands[0])) for cwd in cwds]
    inside = all(str(t) == root or str(t).startswith(root.rstrip("/") + "/") for t in targets)
    return targets if inside else []


def _short(text: str) -> str:
    text = " ".join(text.split())
    return f"`{text[:60]}{'…' if len(text) > 60 else ''}`"
