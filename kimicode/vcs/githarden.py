"""How a git command kimicode runs on the host reads the repository as data, never as code.

A repository's config (``.git/config``, a ``commondir``'s config, files it includes) and its attributes can
name programs that git runs on its own: a filesystem monitor on every index refresh, hooks, filters on every
file it hashes, diff and merge drivers, pagers, editors, transports. A command the model ran may have
written any of them. Every git command kimicode runs is built here: command-line ``-c`` settings (which
outrank every config file) switch each of those off, the driver names the repository defines are read and
each is emptied, and the repository is found by kimicode itself (``layout.py``) and pinned with
``GIT_DIR``/``GIT_WORK_TREE`` so that a planted ``core.worktree`` or pointer cannot move it.
"""

from __future__ import annotations

import re

# Config keys that can make git run a program: (key, value kimicode forces, why). A value of None: nothing
# to force, the reason says why the key cannot act.
EXECUTING_KEYS: tuple[tuple[str, str | None, str], ...] = (
    ("core.fsmonitor", "false", "a program git runs on every index refresh (add, status, diff)"),
    ("core.hooksPath", "/dev/null", "hooks: reference-transaction on update-ref, post-checkout on worktree add"),
    ("core.pager", "cat", "a pager program (also --no-pager and GIT_PAGER=cat)"),
    ("core.editor", ":", "an editor program (also GIT_EDITOR=:)"),
    ("sequence.editor", ":", "the rebase todo editor"),
    ("diff.external", "", "an external diff program (also --no-ext-diff on every diff)"),
    ("log.showSignature", "false", "verifying signatures runs gpg.program"),
    ("commit.gpgSign", "false", "commit-tree signs with gpg.program when set"),
    ("tag.gpgSign", "false", "signing runs gpg.program"),
    ("gpg.program", "false", "only reached when signing, which is off; pinned anyway"),
    ("gpg.ssh.program", "false", "as gpg.program"),
    ("gpg.x509.program", "false", "as gpg.program"),
    ("gpg.ssh.defaultKeyCommand", "", "a program run to pick a signing key"),
    ("core.attributesFile", "/dev/null", "more attributes (which select filter/diff/merge drivers)"),
    ("core.alternateRefsCommand", "", "a program run to list an alternate's refs"),
    ("submodule.recurse", "false", "commands recursing into a nested repository run with its config"),
    ("diff.ignoreSubmodules", "all", "status and diff would run `git status` inside nested repositories"),
    ("status.submoduleSummary", "false", "as diff.ignoreSubmodules"),
    ("safe.bareRepository", "explicit", "a bare repository planted in the workspace is not picked up"),
    ("protocol.ext.allow", "never", "ext:: URLs run any program"),
    ("gc.auto", "0", "no automatic gc (its pre-auto-gc hook, its child processes) after kimicode's commands"),
    ("maintenance.auto", "false", "as gc.auto"),
    ("core.autocrlf", "false", "not a program: checkpoints keep bytes exactly"),
    ("core.safecrlf", "false", "not a program: no warnings about line endings"),
    ("core.quotePath", "false", "not a program: file names as they are"),
    ("advice.addEmbeddedRepo", "false", "not a program: no hint text on stderr"),
    ("uploadpack.packObjectsHook", None, "git honours it only from the user's or system config, never a repository's"),
    ("alias.*", None, "kimicode runs only built-in commands (checked), which an alias cannot replace"),
    ("include.path, includeIf.*", None, "only add config; every key above outranks them (command line wins)"),
    ("pager.<command>", None, "--no-pager on every command"),
)

# Transport: only `clone` (a batch task's URL) talks to a remote. Every other command gets no transport at
# all, which also covers a partial clone's lazy fetch (remote.*.promisor) and what a transport would run.
NO_TRANSPORT: tuple[tuple[str, str, str], ...] = (
    ("protocol.allow", "never", "no transport: core.sshCommand, core.gitProxy, remote.*.uploadpack/vcs, lazy fetch"),
    ("credential.helper", "", "an empty value drops every helper configured before it"),
    ("core.askPass", "", "a program asked for credentials"),
)

# Per-driver keys: a repository's .gitattributes picks a driver by name, its config names the program.
DRIVER_KEY = re.compile(r"^(filter|diff|merge)\.(.+)\.(clean|smudge|process|textconv|command|driver)$", re.IGNORECASE)
DRIVER_QUERY = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver)$"
# An empty merge driver is run as "" and fails the merge; `false` (a shell builtin) reports a conflict.
DRIVER_VALUE = {"driver": "false"}

# Options added right after these commands (they accept them and may otherwise run a program).
COMMAND_OPTIONS: dict[str, tuple[str, ...]] = {
    "diff": ("--no-ext-diff", "--no-textconv", "--ignore-submodules=all"),
    "diff-tree": ("--no-ext-diff", "--no-textconv"),
    "diff-index": ("--no-ext-diff", "--no-textconv"),
    "diff-files": ("--no-ext-diff", "--no-textconv"),
    "log": ("--no-ext-diff", "--no-textconv"),
    "show": ("--no-ext-diff", "--no-textconv"),
    "status": ("--ignore-submodules=all",),
}

# The only commands kimicode runs; anything else is a programming error (and never an alias).
BUILTINS = frozenset({
    "add", "checkout", "checkout-index", "clone", "commit-tree", "config", "diff", "diff-files", "diff-index",
    "diff-tree", "for-each-ref", "log", "ls-files", "merge-tree", "read-tree", "rev-list", "rev-parse", "show",
    "status", "update-index", "update-ref", "worktree", "write-tree",
})

# The environment of every command.
ENVIRONMENT = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "GIT_EDITOR": ":",
    "GIT_SEQUENCE_EDITOR": ":",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_PROTOCOL_FROM_USER": "0",
}


def _pairs(entries: tuple[tuple[str, str | None, str], ...]) -> list[str]:
    options: list[str] = []
    for key, value, _why in entries:
        if value is not None:
            options += ["-c", f"{key}={value}"]
    return options


def global_options(transport: bool) -> list[str]:
    """The options before the command name: no pager, the forced keys, no transport unless ``transport``."""
    options = ["--no-pager", *_pairs(EXECUTING_KEYS)]
    if not transport:
        options += _pairs(NO_TRANSPORT)
    return options


def command_args(args: tuple[str, ...]) -> list[str]:
    """``args`` with the command's own safety options after its name; refuses what is not a built-in."""
    if not args or args[0] not in BUILTINS:
        raise ValueError(f"kimicode runs only known git commands, not {args[:1]}")
    return [args[0], *COMMAND_OPTIONS.get(args[0], ()), *args[1:]]
