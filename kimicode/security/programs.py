"""What kimicode knows about the programs it lets read unasked: per program, the options that are not
read-only and why (as data), and the checks for programs whose arguments decide (git, find, sed, test).
The proof that a whole command line only reads is in readonly.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kimicode.security import gitrepo
from kimicode.security import paths as P
from kimicode.security.lazy_re import LazyPattern
from kimicode.security.shell_types import SimpleCommand


@dataclass(frozen=True)
class Where:
    """What the proof needs to know about the machine: the workspace, the homes, whether the folder is trusted
    (a trusted repository's git configuration is the user's own)."""

    workspace: Path
    kimicode_home: Path
    user_home: Path
    trusted: bool = False
    words_checked: bool = False  # the caller has checked every word for secret paths from the workspace


class Program:
    """One program's safe use: `unsafe` maps an option to why it is not read-only; `value_short` are the
    short options that take a value (the rest of a cluster `-tx` is that value, not options)."""

    __slots__ = ("unsafe", "value_short", "check")

    def __init__(
        self, unsafe: dict[str, str] | None = None, value_short: str = "", check: Callable[..., str] | None = None
    ) -> None:
        self.unsafe = unsafe or {}
        self.value_short = value_short
        self.check = check  # (cmd, cwds, where) -> "" or why not


_PLAIN = Program()
# Programs that only read, whatever their options (output redirections are judged separately).
_READING = (
    "ls dir vdir cat tac head tail wc nl cut tr paste fold column expand unexpand rev pwd echo stat du df "
    "which type basename dirname realpath readlink true false whoami id uname printenv md5sum sha1sum "
    "sha224sum sha256sum sha384sum sha512sum cksum b2sum sum od hexdump strings seq sleep nproc locale "
    "groups arch tty free uptime diff cmp comm jq ps lsof"
)
PROGRAMS: dict[str, Program] = {name: _PLAIN for name in _READING.split()}

# Commands people expect to be read-only but are not, and why.
NOT_READ_ONLY: dict[str, str] = {
    "awk": "awk can write files (print > f) and run programs (system(), |)",
    "gawk": "awk can write files (print > f) and run programs (system(), |)",
    "tee": "writes its file operands",
    "xargs": "runs its operands as a command",
    "less": "can run shell commands (!cmd) and editors (v)",
    "more": "can run shell commands (!cmd)",
    "man": "runs a pager, which can run shell commands",
    "xxd": "xxd -r and a second operand write files",
    "touch": "creates files and changes timestamps",
    "curl": "reaches the network; -o writes files",
    "wget": "reaches the network and writes files",
}


def unsafe_option(cmd: SimpleCommand, spec: Program) -> str:
    """Why one of the words is an unsafe option of this program ("" when none is)."""
    for word in cmd.words[1:]:
        if word == "--":
            return ""
        if word.startswith("--") and len(word) > 2:
            option = word.split("=", 1)[0]
            for name, why in spec.unsafe.items():
                # GNU tools accept any unambiguous abbreviation of a long option.
                if name.startswith("--") and name.startswith(option):
                    return f"{name}: {why}"
        elif word.startswith("-") and len(word) > 1:
            if word in spec.unsafe:
                return f"{word}: {spec.unsafe[word]}"
            for letter in word[1:]:
                letter_why = spec.unsafe.get(f"-{letter}")
                if letter_why is not None:
                    return f"-{letter}: {letter_why}"
                if letter in spec.value_short:
                    break
    return ""


# --------------------------------------------------------------------------------- checks per program


def _operands_at_most(count: int, value_options: str) -> Callable[..., str]:
    def check(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
        operands, skip = 0, False
        for word in cmd.words[1:]:
            if skip:
                skip = False
            elif word in value_options.split():
                skip = True
            elif not word.startswith("-") or word == "-":
                operands += 1
        return "" if operands <= count else "a further operand is a file it writes"

    return check


def _no_operands(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
    return "" if len(cmd.words) == 1 else "with operands it runs or changes something"


def _lookup_only(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
    return "" if len(cmd.words) > 1 and cmd.words[1] in ("-v", "-V") else "runs its operand as a command"


_ARITHMETIC_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
# Compiled on first use (lazy_re.py): only `test` with these operators needs them, only a sed script _SED_STEP.
_INTEGER = LazyPattern(r"^[+-]?[0-9]+$")
_NAME = LazyPattern(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _test_ok(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
    # `[[ x -eq y ]]` evaluates both operands as arithmetic, `-v`/`-R` evaluate an array subscript: the text
    # `a[$(cmd)]` runs cmd even when quoted. Only plain integers and plain names are proven harmless.
    words = cmd.words
    for i, word in enumerate(words):
        if word in _ARITHMETIC_TESTS:
            operands = [w for w in (words[i - 1] if i > 0 else "", words[i + 1] if i + 1 < len(words) else "")]
            if not all(_INTEGER.match(w) for w in operands):
                return f"{word} evaluates its operands as arithmetic; only plain numbers are read-only"
        elif word in ("-v", "-R") and not (i + 1 < len(words) and _NAME.match(words[i + 1])):
            return f"{word} evaluates an array subscript"
    return ""


_SED_ADDRESS = r"(?:[0-9]+(?:~[0-9]+)?|\$|/(?:[^/\\\n]|\\.)*/I?)"
_SED_PART = r"(?:[^/\\\n]|\\.)*"
_SED_STEP = LazyPattern(
    rf"\s*(?:{_SED_ADDRESS}(?:\s*,\s*(?:{_SED_ADDRESS}|[+~][0-9]+))?)?\s*!?\s*"
    rf"(?:[pdDqQ][0-9]*|[=lnNgGhHxzP]|s/{_SED_PART}/{_SED_PART}/[gpiImM0-9]*|y/{_SED_PART}/{_SED_PART}/)"
    r"\s*(?:[;\n]|$)"
)
_SED_FLAGS = frozenset({"-n", "--quiet", "--silent", "-E", "-r", "--regexp-extended", "-s", "--separate",
                        "-u", "--unbuffered", "-z", "--null-data", "--posix", "--debug"})


def sed_script_ok(script: str) -> bool:
    """Only printing, deleting, quitting, substituting without w/e flags: never w, W, e, r or R commands."""
    i = 0
    while i < len(script):
        match = _SED_STEP.match(script, i)
        if match is None or match.end() == i:
            return False
        i = match.end()
    return True


def _sed_ok(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
    scripts: list[str] = []
    operands: list[str] = []
    words = cmd.words[1:]
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-e", "--expression") and i + 1 < len(words):
            scripts.append(words[i + 1])
            i += 2
            continue
        if word.startswith("--expression="):
            scripts.append(word.split("=", 1)[1])
        elif word.startswith("-e") and len(word) > 2:
            scripts.append(word[2:])
        elif word.startswith(("-i", "--in-place")):
            return "-i edits files in place"
        elif word.startswith(("-f", "--file")):
            return "-f reads a script that may write files or run programs"
        elif word.startswith("-") and word != "-" and word not in _SED_FLAGS:
            return f"{word} is not an option kimicode knows to be safe for sed"
        elif not word.startswith("-") or word == "-":
            operands.append(word)
        i += 1
    if not scripts and operands:
        scripts.append(operands.pop(0))
    if not scripts or not all(sed_script_ok(s) for s in scripts):
        return "the sed script may write files (w, W, s///w) or run programs (e, s///e)"
    return ""


_FIND_UNSAFE = {
    "-exec": "runs a program", "-execdir": "runs a program", "-ok": "runs a program", "-okdir": "runs a program",
    "-delete": "deletes files", "-fprint": "writes a file", "-fprint0": "writes a file",
    "-fprintf": "writes a file", "-fls": "writes a file",
}


def _find_ok(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
    for word in cmd.words[1:]:
        if word in _FIND_UNSAFE:
            return f"{word} {_FIND_UNSAFE[word]}"
    return ""


_GIT_GLOBAL_OK = frozenset({"--no-pager", "-P", "--no-optional-locks", "--literal-pathspecs", "--no-replace-objects",
                            "--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs"})
_GIT_GLOBAL_UNSAFE = {
    "-c": "sets configuration, which can name programs to run",
    "--config-env": "sets configuration, which can name programs to run",
    "--exec-path": "runs git's programs from another folder",
    "--git-dir": "reads a repository other than the workspace's",
    "--work-tree": "reads a work tree other than the workspace's",
}
_GIT_READ = frozenset({"status", "log", "diff", "show", "branch", "rev-parse", "ls-files", "blame", "describe",
                       "shortlog", "ls-tree"})
_GIT_UNSAFE = {
    "--output": "writes to a file",
    "--ext-diff": "runs the configured external diff program",
    "--textconv": "runs the text conversion programs the repository names",
    "--open-files-in-pager": "runs a pager",
}
_GIT_BRANCH_LISTING = frozenset(
    {"-a", "--all", "-r", "--remotes", "-l", "--list", "-v", "-vv", "--verbose", "--show-current", "--merged",
     "--no-merged", "--contains", "--no-contains", "--points-at", "--sort", "--format", "--color", "--no-color",
     "--column", "--no-column", "-i", "--ignore-case", "--abbrev", "--no-abbrev", "-q", "--quiet"}
)
_GIT_BRANCH_VALUE = frozenset({"--merged", "--no-merged", "--contains", "--no-contains", "--points-at", "--sort", "--format"})


def _git_ok(cmd: SimpleCommand, cwds: list[Path], where: Where) -> str:
    words = cmd.words
    dirs = list(cwds)
    i = 1
    while i < len(words) and words[i].startswith("-"):
        option = words[i].split("=", 1)[0]
        if option == "-C" and i + 1 < len(words):
            dirs = [Path(os.path.normpath(d / words[i + 1])) for d in dirs]
            if not all(d.is_dir() for d in dirs):
                return f"git -C {words[i + 1]}: not a folder"
            i += 2
        elif option in _GIT_GLOBAL_OK:
            i += 1
        else:
            return f"git {option}: {_GIT_GLOBAL_UNSAFE.get(option, 'an option kimicode does not know to be safe')}"
    if i >= len(words) or words[i] not in _GIT_READ:
        return "git " + (words[i] if i < len(words) else "") + ": not a subcommand that only reads"
    sub, args = words[i], words[i + 1 :]
    for word in args:
        for name, why in _GIT_UNSAFE.items():
            option = word.split("=", 1)[0]
            if word.startswith("--") and len(option) > 2 and name.startswith(option):
                return f"git {sub} {name}: {why}"
    if sub == "branch" and not _branch_lists(args):
        return "git branch with these arguments changes branches"
    own = gitrepo.discover(where.workspace)
    for folder in dirs:
        if folder == cwds[0]:
            continue  # the workspace itself
        if not P.is_inside_workspace(folder, where.workspace):
            return "git in a folder outside the workspace"
        found = gitrepo.discover(folder)
        if found != own:
            return "git would read a repository other than the workspace's own"
    if own is not None and not where.trusted:
        reason = gitrepo.program_reason(own, where.workspace)
        if reason:
            return f"{reason} (an untrusted folder)"
    return ""


def _branch_lists(args: tuple[str, ...]) -> bool:
    listing = any(w in ("-l", "--list") for w in args)
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        option = word.split("=", 1)[0]
        if word.startswith("-"):
            if option not in _GIT_BRANCH_LISTING:
                return False  # -d, -D, -m, -M, -c, -C, -u, --set-upstream-to, -f ...
            skip = option in _GIT_BRANCH_VALUE and "=" not in word
        elif not listing:
            return False  # `git branch NAME` creates a branch
    return True


_FOLLOWS = "follows symbolic links out of the workspace"
PROGRAMS.update(
    {
        "grep": Program({"-R": _FOLLOWS, "--dereference-recursive": _FOLLOWS}, "ABCDdefm"),
        "egrep": Program({"-R": _FOLLOWS, "--dereference-recursive": _FOLLOWS}, "ABCDdefm"),
        "fgrep": Program({"-R": _FOLLOWS, "--dereference-recursive": _FOLLOWS}, "ABCDdefm"),
        "rg": Program(
            {"--pre": "runs a program on every file searched", "--pre-glob": "runs a program on every file searched",
             "-L": _FOLLOWS, "--follow": _FOLLOWS, "--hostname-bin": "runs a program"},
            "ABCEMTdefgjmrt",
        ),
        "sort": Program(
            {"-o": "writes a file", "--output": "writes a file", "--compress-program": "runs a program",
             "-T": "writes temporary files into a folder", "--temporary-directory": "writes temporary files"},
            "kSt",
        ),
        "uniq": Program(check=_operands_at_most(1, "-f -s -w")),
        "tree": Program({"-o": "writes a file", "--output": "writes a file", "-R": "writes 00Tree.html files"}, "LPIHT"),
        "file": Program({"-C": "compiles a magic file (writes)", "--compile": "compiles a magic file (writes)"}, "eFfmP"),
        "date": Program({"-s": "sets the clock", "--set": "sets the clock"}, "dfIr"),
        "printf": Program({"-v": "assigns a shell variable"}),
        "env": Program(check=_no_operands),  # `env CMD` runs CMD
        "hostname": Program(check=_no_operands),  # `hostname NAME` renames the machine
        "command": Program(check=_lookup_only),  # `command x` runs x
        "test": Program(check=_test_ok),
        "[": Program(check=_test_ok),
        "[[": Program(check=_test_ok),
        "sed": Program(check=_sed_ok),
        "find": Program(check=_find_ok),
        "git": Program(check=_git_ok),
        "cd": _PLAIN,  # judged with the folders it moves to (read_only_problems)
    }
)
