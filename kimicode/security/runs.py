"""What a command line runs, and whether each program it runs can be known before it runs.

Deny rules match programs by name. A name decided at run time (`$T x`, `$(echo touch) x`), code handed to a
shell or an interpreter (`eval`, `echo touch x | sh`, `python -c`), a command built from input (`xargs -I{}
{}`), configuration that defines commands (`git -c alias.x='!touch x' x`), or a program given by a path in
the workspace (a copied binary) cannot be matched. Where a deny rule exists, such a command is unknown, and
the policy refuses it under -y and asks otherwise. A literal `bash -c 'touch x'` is read and judged.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from kimicode.security import paths as P
from kimicode.security.launchers import (
    OPAQUE_PROGRAMS,
    SHELLS,
    SUBCOMMAND_PROGRAMS,
    basename,
    inner_argvs,
    interpreter_options,
    unwrap,
)
from kimicode.security.shell import parse_command
from kimicode.security.shell_types import ParsedCommand

MAX_DEPTH = 3  # `bash -c 'bash -c "…"'` nested deeper than this is unknown
# Programs given by a path in these folders are the system's own (a deny rule matches their basename).
SYSTEM_DIRS = frozenset({"/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"})
# Shell builtins: known without a lookup.
BUILTINS = frozenset(
    "cd echo printf test [ [[ true false pwd export declare typeset local readonly unset set shopt read type "
    "command hash ulimit umask wait kill jobs fg bg getopts let shift return exit break continue times dirs "
    "pushd popd : builtin caller disown help history logout suspend".split()
)
# Programs that run a command taken from their arguments in a way not analysed here, and why.
RUNNERS: dict[str, str] = {
    **{name: "runs a command given in its arguments" for name in (
        "flock", "strace", "ltrace", "chroot", "unshare", "nsenter", "setpriv", "su", "runuser", "script",
        "parallel", "ssh", "gdb", "valgrind", "perf", "firejail", "bwrap", "systemd-run", "at", "batch",
        "taskset", "chrt", "numactl", "prlimit", "entr", "npx", "pnpx", "bunx", "uvx", "dbus-run-session",
        "catchsegv", "faketime", "fakeroot", "proot", "sg", "newgrp", "pkexec")},
    **{name: "an editor or pager that runs shell commands" for name in (
        "vi", "vim", "nvim", "ex", "ed", "emacs", "less", "more", "man", "nano")},
    **{name: "an interpreter: runs the code it is given" for name in (
        "tclsh", "wish", "expect", "lua", "luajit", "Rscript", "R", "julia", "osascript", "guile", "racket",
        "sbcl", "ocaml", "ghci", "runghc", "groovy", "scala", "kotlin", "jshell", "pwsh", "powershell")},
}
# With a deny rule, only these run unasked under -y (besides builtins): programs that do not take a command
# from their arguments, or whose options that do are judged (`find -exec`, `git -c`, `tar -I`, `sed e`, awk).
# Anything else — a wrapper kimicode does not know (`chronic touch x`), a copy under another name — is unknown.
KNOWN_PROGRAMS = frozenset(
    """
    ls dir cat tac head tail wc nl grep egrep fgrep rg ag find sed sort uniq cut tr paste join diff diff3 sdiff cmp
    comm patch echo printf pwd mkdir rmdir rm cp mv ln link unlink chmod chown chgrp touch mktemp stat du df file
    tree date sleep basename dirname realpath readlink which whereis type nl rev fold column expand unexpand seq
    yes tee xxd od hexdump strings md5sum sha1sum sha224sum sha256sum sha384sum sha512sum shasum cksum b2sum sum
    base64 base32 gzip gunzip zcat bzip2 bunzip2 xz unxz zstd unzstd tar unzip zip curl wget jq yq git make cmake
    ninja meson cargo rustc rustup rustfmt go gofmt npm pnpm yarn bun pip pip3 uv poetry pdm hatch pytest tox nox
    black ruff mypy pyright flake8 isort pylint eslint prettier tsc jest vitest mocha gcc g++ cc c++ clang clang++
    ld ar nm objdump strip javac mvn gradle dotnet kubectl helm terraform ps kill free uptime whoami id uname
    hostname nproc lsof tput clear stty locale groups arch tty ip ss netstat ping dig nslookup host openssl
    ssh-keygen awk gawk mawk nawk iconv dos2unix unix2dos split csplit truncate shred numfmt factor expr bc dc
    env nice nohup timeout stdbuf setsid ionice sudo doas xargs command exec time python python3 node perl ruby
    php deno pipx bundle gem rake composer
    """.split()
)
_AWK = frozenset({"awk", "gawk", "mawk", "nawk"})
# Options of known programs that run a program named in their value.
_RUNS_OPTION: dict[str, tuple[str, ...]] = {
    "tar": ("-I", "--use-compress-program", "--to-command", "--checkpoint-action", "--info-script", "-F",
            "--new-volume-script", "--rsh-command", "--rmt-command"),
    "zip": ("-TT", "--unzip-command"),
    "rsync": ("-e", "--rsh", "--rsync-path"),
    "make": ("--eval", "SHELL="),
    "find": ("-exec", "-execdir", "-ok", "-okdir"),
}
_AWK_RUNS = re.compile(r"system|\||getline|@load|ENVIRON")
# Subcommands that take a script name from the project (`npm run test`): judged by that name.
_SCRIPT_RUNS = frozenset({"run", "run-script"})
_SCRIPT_RUNNERS = frozenset({"npm", "pnpm", "yarn", "bun"})
_EXPANDED = re.compile(r"[$`*?\[{~\\'\"]")
_GIT_BUILTINS = frozenset(
    "add am annotate apply archive bisect blame branch bundle checkout cherry cherry-pick citool clean clone "
    "commit config count-objects describe diff diff-files diff-index diff-tree difftool fetch format-patch fsck "
    "gc grep gui help init instaweb log ls-files ls-remote ls-tree merge merge-base mergetool mv notes pull push "
    "range-diff rebase reflog remote repack replace reset restore rev-list rev-parse revert rm shortlog show "
    "show-branch show-ref sparse-checkout stash status submodule switch tag whatchanged worktree cat-file "
    "check-ignore check-attr hash-object update-index write-tree read-tree commit-tree symbolic-ref "
    "update-ref for-each-ref name-rev var version maintenance".split()
)


def runs(parsed: ParsedCommand, depth: int = 0) -> list[tuple[str, ...]]:
    """The argv of everything the line runs that kimicode can name: each simple command, what wrappers and
    `find -exec` run, and the commands inside a literal `bash -c '…'` (read and walked the same way)."""
    found: list[tuple[str, ...]] = []
    for part in parsed.commands:
        for argv in (part.words, *inner_argvs(part.words)):
            if not argv:
                continue
            found.append(argv)
            code = _literal_shell_code(argv, part.literal if argv is part.words else ())
            if code is not None and depth < MAX_DEPTH:
                found += runs(parse_command(code), depth + 1)
            found += _subcommand_runs(argv)
    return found


def unknown_reason(parsed: ParsedCommand, workspace: Path, depth: int = 0) -> str:
    """Why some program this line runs cannot be known before it runs ("" when every one can)."""
    if parsed.error:
        return f"cannot be parsed ({parsed.error})"
    if parsed.hidden:
        return "hides what it runs (a function, or a substitution kimicode cannot see)"
    path_changed = False
    for part in parsed.commands:
        if part.assignments and part.words:
            return f"{_shown(part.text)} sets variables for the program it runs"
        if any(a.split("=", 1)[0].split("[", 1)[0] == "PATH" for a in part.assignments) or (
            part.words and part.words[0] in ("export", "declare", "typeset", "local", "readonly", "hash")
            and any("PATH" in w or part.words[0] == "hash" for w in part.words[1:])
        ):
            path_changed = True
        if not part.words:
            continue
        if part.literal and not part.literal[0]:
            return f"the program of {_shown(part.text)} is decided when it runs"
        for argv in (part.words, *inner_argvs(part.words)):
            why = _argv_reason(argv, workspace, path_changed, depth, part.literal if argv is part.words else None)
            if why:
                return why
    return ""


def _argv_reason(
    argv: tuple[str, ...], workspace: Path, path_changed: bool, depth: int, literal: tuple[bool, ...] | None
) -> str:
    """Why the program of `argv` cannot be known before it runs; `literal`: the parser's flags (None: a
    command a wrapper runs, whose words are judged by their text)."""
    first = literal is not None
    program = argv[0]
    if not first and _EXPANDED.search(program) or "{}" in program:
        return f"the program `{program}` is decided when it runs"
    name = basename(program)
    if "/" in program:
        folder = os.path.dirname(os.path.normpath(program))
        if folder not in SYSTEM_DIRS:
            return f"runs `{program}`, a program kimicode cannot know by its name"
    if name in OPAQUE_PROGRAMS and name != "exec":
        return f"{name} runs code kimicode cannot see before it runs"
    if name in RUNNERS:
        return f"{name}: {RUNNERS[name]}"
    wrapped = unwrap(argv)
    if wrapped is not None and not wrapped[1]:
        return f"{name} with options kimicode does not know: the command it runs is unknown"
    if name == "env" and any(w.startswith(("-S", "--split-string")) for w in argv[1:]):
        return "env -S splits a string into a command"
    if name in ("mapfile", "readarray") and any(w.startswith("-C") for w in argv[1:]):
        return f"{name} -C runs a callback"
    if name in SHELLS:
        code = _literal_shell_code(argv, literal or ())
        if code is None or depth >= MAX_DEPTH:
            return f"{name} runs code kimicode cannot see before it runs (a script, stdin or a variable)"
        why = unknown_reason(parse_command(code), workspace, depth + 1)
        if why:
            return why
    code_options = interpreter_options(name)
    if code_options is not None and not _interpreter_known(argv):
        return f"{name} runs code it is given (inline, on stdin or in a script)"
    if name in _AWK and _awk_runs(argv):
        return f"{name} with a program that can run commands (system, pipes, getline) or from a file"
    if name == "sed" and _sed_runs(argv):
        return "sed with a script that can run commands (e, s///e) or from a file"
    if name == "git":
        why = _git_reason(argv)
        if why:
            return why
    for inner in _subcommand_runs(argv):
        why = _argv_reason(inner, workspace, path_changed, depth, None)
        if why:
            return why
    for option in _RUNS_OPTION.get(name, ()):
        if name != "find" and any(w == option or w.startswith(option + ("" if option.endswith("=") else "=")) or
                                  (len(option) == 2 and w.startswith(option)) for w in argv[1:]):
            return f"{name} {option} runs a program named in its value"
    if name not in BUILTINS and name not in KNOWN_PROGRAMS and name not in SHELLS and interpreter_options(name) is None:
        return f"`{name}` is not a program kimicode knows, so a deny rule cannot be checked against what it runs"
    if "/" not in program and name not in BUILTINS:
        if path_changed:
            return f"`{name}` is looked up on a PATH this command changes"
        found = shutil.which(name)
        if found is None:
            return f"`{name}` is not a program on PATH"
        real, root = os.path.realpath(found), os.path.realpath(workspace)
        if real == root or real.startswith(root.rstrip("/") + "/") or P.inside(Path(found), workspace):
            return f"`{name}` is a program inside the workspace"
    return ""


def _literal_shell_code(argv: tuple[str, ...], literal: tuple[bool, ...] = ()) -> str | None:
    """The code of `bash -c 'CODE'` when it is plain text (no expansion); None otherwise. Without the parser's
    `literal` flags (a wrapped command), code with any expansion character is not plain."""
    if basename(argv[0]) not in SHELLS or basename(argv[0]) == "busybox":
        return None
    for i, word in enumerate(argv[1:], 1):
        if word.startswith("-") and not word.startswith("--") and "c" in word[1:] and set(word[1:]) <= set("cexuvlE"):
            if i + 1 >= len(argv):
                return None
            if literal[i + 1 : i + 2] == (True,) or (not literal and not _EXPANDED.search(argv[i + 1])):
                return argv[i + 1]
            return None
        if not word.startswith("-"):
            return None
    return None


def _interpreter_known(argv: tuple[str, ...]) -> bool:
    args = argv[1:]
    if args and all(w in ("--version", "-V", "--help", "-h") for w in args):
        return True
    # `python -m pytest`: a module by name (the module, not code in the command).
    return len(args) >= 2 and args[0] == "-m" and not _EXPANDED.search(args[1])


def _awk_runs(argv: tuple[str, ...]) -> bool:
    for i, word in enumerate(argv[1:], 1):
        if word.startswith(("-f", "--file", "-E", "--exec", "-l", "--load")):
            return True
        if word in ("-F", "-v", "--assign", "--field-separator"):
            continue
        if word.startswith("-") or (i > 1 and argv[i - 1] in ("-F", "-v", "--assign", "--field-separator")):
            continue
        return bool(_AWK_RUNS.search(word)) or bool(_EXPANDED.search(word.replace("'", "").replace('"', "")) and "$" in word)
    return False


def _sed_runs(argv: tuple[str, ...]) -> bool:
    from kimicode.security.programs import sed_script_ok

    scripts = [argv[i + 1] for i, w in enumerate(argv[:-1]) if w in ("-e", "--expression")]
    if any(w.startswith(("-f", "--file")) for w in argv[1:]):
        return True
    if not scripts:
        operands = [w for w in argv[1:] if not w.startswith("-")]
        scripts = operands[:1]
    return any("e" in s and not sed_script_ok(s) for s in scripts)


def _git_reason(argv: tuple[str, ...]) -> str:
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        option = argv[i].split("=", 1)[0]
        if option in ("-c", "--config-env", "--exec-path"):
            return f"git {option} can define commands (aliases, pagers, external programs)"
        i += 2 if option in SUBCOMMAND_PROGRAMS["git"].arg_options and "=" not in argv[i] else 1
    if i < len(argv) and argv[i] not in _GIT_BUILTINS:
        return f"git {argv[i]}: not a git command, so an alias that can run anything"
    return ""


def _subcommand_runs(argv: tuple[str, ...]) -> list[tuple[str, ...]]:
    """`uv run pytest`, `npm exec x`, `poetry run x`: the command run by a package manager's subcommand."""
    name = basename(argv[0])
    spec = SUBCOMMAND_PROGRAMS.get(name)
    if spec is None or not spec.runs:
        return []
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in spec.arg_options else 1
    if i >= len(argv) or argv[i] not in spec.runs:
        return []
    if name in _SCRIPT_RUNNERS and argv[i] in _SCRIPT_RUNS:
        return []  # a script of the project's, by name
    rest = argv[i + 1 :]
    while rest and rest[0].startswith("-"):
        rest = rest[1:]
    return [rest] if rest else []


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return f"`{text[:60]}{'…' if len(text) > 60 else ''}`"
