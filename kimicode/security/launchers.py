"""Programs that run other programs, and how their command lines are laid out.

Knowledge, not parsing: wrappers whose operands are a command (`sudo`, `env`, `timeout`, `xargs`), `find
-exec`, shells and interpreters handed code, and package managers with a `run` subcommand. Used by the parser
(is there code we cannot see?), the deny-rule check (runs.py: what really runs) and the session prefix
(prefix.py: what an approval covers).

Invariants:
- An option a wrapper's table does not list makes the wrapper not understood (`unwrap` says so): the inner
  command is then unknown, never guessed.
- Programs are matched by basename here; whether the path itself can be trusted is the caller's question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kimicode.security.shell_types import SimpleCommand

# Programs whose arguments are code, or that change how later code is read: we cannot see what they run.
OPAQUE_PROGRAMS = frozenset({"eval", "exec", "source", ".", "trap", "alias", "enable", "coproc", "watch", "fc"})
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "ash", "busybox"})


def basename(program: str) -> str:
    return program.rsplit("/", 1)[-1]


def runs_hidden_code(argv: Sequence[str]) -> bool:
    name = basename(argv[0])
    if name in OPAQUE_PROGRAMS:
        return True
    if name in SHELLS:
        return _shell_runs_code(argv)
    if name == "env" and any(w.startswith(("-S", "--split-string")) for w in argv[1:]):
        return True  # env -S splits a string into a command line
    if name in ("mapfile", "readarray"):
        return any(w.startswith("-C") for w in argv[1:])  # -C runs a callback for each line
    code_options = interpreter_options(name)
    if code_options is not None:
        # `python`, `python -`, `node < x.js`: the program reads its code from stdin (a pipe, a heredoc).
        if any(w in ("--version", "-V", "--help", "-h") for w in argv[1:]):
            return False
        operands = [w for w in argv[1:] if not w.startswith("-") or w == "-" or w in code_options]
        return not operands or operands[0] == "-"
    return False


def _shell_runs_code(argv: Sequence[str]) -> bool:
    """A shell given code we cannot see: `-c CODE`, a script on stdin (`| sh`, `bash <<EOF`), `-s`, `-i`."""
    args = argv[1:]
    if basename(argv[0]) == "busybox":
        if not args or basename(args[0]) not in SHELLS:
            return False
        args = args[1:]
    i = 0
    while i < len(args):
        word = args[i]
        if word in ("--", "-"):
            return i + 1 >= len(args) or word == "-"
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if word.startswith("--"):
            i += 1
            continue
        if word[:1] in "-+" and len(word) > 1:
            if any(flag in word[1:] for flag in "csi"):
                return True
            i += 1
            continue
        return False  # a script file: like running any other program
    return True  # no script: reads its code from stdin


class Wrapper:
    # A plain class, not a dataclass: these tables are built at import, which must stay cheap.
    __slots__ = ("arg_options", "flags", "positional", "assignments")

    def __init__(self, arg_options: str, flags: str = "", positional: int = 0, assignments: bool = False) -> None:
        self.arg_options = frozenset(arg_options.split())  # options that take the next word as their value
        self.flags = frozenset(flags.split())  # options with no value; any other makes the wrapper unknown
        self.positional = positional  # operands before the command (`timeout 10 cmd`)
        self.assignments = assignments  # `env A=1 cmd`


_w = Wrapper


# Programs whose operands are another command. Unknown options make the inner command unknown, and the
# prefix then covers only the exact command line.
WRAPPERS: dict[str, Wrapper] = {
    "env": _w("-u --unset -C --chdir", "-i --ignore-environment -0 --null -v --debug -", assignments=True),
    "sudo": _w("-u --user -g --group -h --host -p --prompt -C --close-from -D --chdir -r --role -t --type "
               "-U --other-user -T --command-timeout -R --chroot", "-E -H -n -S -k -K -A -b -P -s -i --"),
    "doas": _w("-u -C", "-n -s -L --"),
    "nohup": _w("", "--"),
    "nice": _w("-n --adjustment", "--"),
    "ionice": _w("-c --class -n --classdata -p --pid -P --pgid -u --uid", "-t --ignore --"),
    "timeout": _w("-s --signal -k --kill-after", "--preserve-status --foreground -v --verbose --", positional=1),
    "stdbuf": _w("-i --input -o --output -e --error", "--"),
    "time": _w("-f --format -o --output", "-p -a --append -v --verbose -q --quiet --portability --"),
    "command": _w("", "-p --"),
    "builtin": _w("", "--"),
    "exec": _w("-a", "-c -l --"),
    "setsid": _w("", "-c --ctty -f --fork -w --wait --"),
    "xargs": _w("-a --arg-file -d --delimiter -E -e --eof -I -L -l --max-lines -n --max-args -P --max-procs "
                "-s --max-chars --process-slot-var", "-0 --null -r --no-run-if-empty -t --verbose -p --interactive "
                "-x --exit -o --open-tty --show-limits -i --replace"),
}

FIND_RUNS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def unwrap(argv: Sequence[str]) -> tuple[int, bool] | None:
    """For a wrapper, (index where the inner command starts, whether the wrapper's options were understood)."""
    name = basename(argv[0])
    spec = WRAPPERS.get(name)
    if spec is None:
        return None
    if name == "command" and any(w in ("-v", "-V") for w in argv[1:]):
        return None  # `command -v x` looks a name up; it runs nothing
    i, positional = 1, spec.positional
    while i < len(argv):
        word = argv[i]
        if word == "--" and "--" in spec.flags:
            i += 1
            break
        if spec.assignments and "=" in word and not word.startswith("-"):
            i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            option = word.split("=", 1)[0]
            if option in spec.arg_options:
                i += 1 if "=" in word else 2
            elif word in spec.flags:
                i += 1
            elif option[:2] in spec.arg_options and not option.startswith("--"):
                i += 1  # value attached: `-n10`, `-oL`, `-I{}`
            elif name == "nice" and word[1:].isdigit():
                i += 1  # nice -10
            else:
                return i, False
            continue
        if positional:
            positional -= 1
            i += 1
            continue
        break
    return i, True


def inner_argvs(words: Sequence[str]) -> list[tuple[str, ...]]:
    """The argv of every command this one runs for us: behind wrappers (`sudo x`, `xargs x`) and `find -exec x`."""
    found: list[tuple[str, ...]] = []
    current = tuple(words)
    while current:
        name = basename(current[0])
        if name == "find":
            i = 1
            while i < len(current):
                if current[i] in FIND_RUNS:
                    end = i + 1
                    while end < len(current) and current[end] not in (";", "+"):
                        end += 1
                    found.append(current[i + 1 : end])
                    i = end
                i += 1
            break
        wrapped = unwrap(current)
        if wrapped is None:
            break
        start, understood = wrapped
        if not understood:
            break
        current = current[start:]
        if current:
            found.append(current)
    return found


def inner_commands(cmd: SimpleCommand) -> tuple[tuple[str, ...], ...]:
    """The commands `cmd` runs on our behalf.

    `sudo rm x` → (("rm", "x"),); `find . -exec rm {} +` → (("rm", "{}"),). A deny rule for `rm` should also
    see these. Nested wrappers give one entry each (`sudo env rm` → both).
    """
    return tuple(inner_argvs(cmd.words))


class Subcommands:
    __slots__ = ("arg_options", "runs")

    def __init__(self, arg_options: str, runs: str = "") -> None:
        self.arg_options = frozenset(arg_options.split())  # global options with a value (`git -C dir status`)
        self.runs = frozenset(runs.split())  # subcommands whose next word names what runs (`npm run build`)


_s = Subcommands


# Programs with subcommands whose global options come first. The options seen stay in the prefix, so an
# approval of `git -c core.pager=cat log` does not cover `git push`.
SUBCOMMAND_PROGRAMS: dict[str, Subcommands] = {
    "git": _s("-C -c --git-dir --work-tree --namespace --config-env --super-prefix"),
    "npm": _s("--prefix -w --workspace", "run run-script exec x"),
    "pnpm": _s("-C --dir --filter -F", "run exec dlx"),
    "yarn": _s("--cwd", "run exec dlx"),
    "bun": _s("--cwd", "run x"),
    "npx": _s("-p --package", ""),
    "uv": _s("--directory --project", "run tool"),
    "uvx": _s("--from --with", ""),
    "poetry": _s("-C --directory -P --project", "run"),
    "pdm": _s("-p --project", "run"),
    "hatch": _s("-e --env", "run"),
    "pipx": _s("", "run"),
    "bundle": _s("", "exec"),
    "cargo": _s("-C --config --color -Z", "run"),
    "go": _s("-C", "run"),
    "docker": _s("-H --host -c --context --config -l --log-level", "run exec"),
    "kubectl": _s("-n --namespace --context --kubeconfig -s --server --cluster --user", "exec"),
    "make": _s("-C --directory -f --file --makefile -I --include-dir -o --old-file -W --what-if"),
}
# Interpreters: an option that carries code or a module name is part of the prefix, with its value.
INTERPRETERS: dict[str, frozenset[str]] = {
    "python": frozenset({"-c", "-m"}),
    "node": frozenset({"-e", "--eval", "-p", "--print", "-r", "--require"}),
    "deno": frozenset({"eval"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e", "-r"}),
    "php": frozenset({"-r"}),
}


def interpreter_options(name: str) -> frozenset[str] | None:
    if name in INTERPRETERS:
        return INTERPRETERS[name]
    stem = re.sub(r"[\d.]+$", "", name)  # python3, python3.12, node18
    return INTERPRETERS.get(stem)
