"""Options and variables that make an approved program load other code: an allow rule's ``*`` never covers them.

An approval of `make`, `pytest` or `npm test` is for the program doing its usual job on this project. The same
program told `-f /tmp/x`, `-p evil` or `--script-shell=/tmp/x` runs code the user never saw, so such a word
counts only when the rule spells it out (`bash(make -f ci.mk *)`, `bash(pytest -p xdist *)`).

The data: per program, each option with the reason it loads code; options every program is held to (they load
code wherever they appear, words passed on after ``--`` included); and environment variables set in front of a
command (`PYTEST_ADDOPTS=-p\\ evil pytest`).
"""

from __future__ import annotations

import fnmatch
import os
import re
from functools import lru_cache

# Long options that load code or configuration that can run code, in any program.
GENERIC: dict[str, str] = {
    "--config": "reads another configuration file (which can name plugins, hooks or shells)",
    "--config-file": "reads another configuration file",
    "--rcfile": "runs another start-up file",
    "--rc-file": "runs another start-up file",
    "--init-file": "runs another start-up file",
    "--init-script": "runs another init script",
    "--require": "loads a module before running",
    "--import": "loads a module before running",
    "--loader": "loads a module loader",
    "--experimental-loader": "loads a module loader",
    "--preload": "loads a module before running",
    "--plugin": "loads a plugin",
    "--plugins": "loads plugins",
    "--load-plugins": "loads plugins",
    "--settings": "loads another settings module",
    "--script-shell": "runs the scripts with another program",
    "--node-options": "passes options such as --require to node",
    "--eval": "runs code given on the command line",
    "--exec": "runs another command",
    "--rootdir": "reads test configuration (conftest.py) from another folder",
}

_JS_RUNNER = {
    "-c": "jest/vitest/webpack: reads another configuration file",
    "-r": "mocha/node: loads a module first",
    "--setupFiles": "jest: runs setup files",
    "--setupFilesAfterEnv": "jest: runs setup files",
    "--globalSetup": "jest: runs a setup module",
    "--globalTeardown": "jest: runs a teardown module",
    "--testRunner": "jest: runs another test runner",
    "--transform": "jest: loads transformers",
    "--preset": "jest: loads a preset",
    "--reporters": "loads reporter modules",
    "--prefix": "npm: runs the scripts of another folder's package.json",
    "-C": "pnpm: runs the scripts of another folder",
    "--dir": "pnpm: runs the scripts of another folder",
    "--cwd": "yarn/bun: runs the scripts of another folder",
    "--userconfig": "npm: reads another .npmrc (script-shell, node-options)",
    "--globalconfig": "npm: reads another global .npmrc",
    "--call": "npm exec: runs a command",
}

# Per program: options (short ones also in clusters such as `-qp`) with the reason they load code.
PROGRAMS: dict[str, dict[str, str]] = {
    "make": {
        "-f": "reads another makefile, whose recipes run",
        "--file": "reads another makefile",
        "--makefile": "reads another makefile",
        "-C": "runs the makefile of another folder",
        "--directory": "runs the makefile of another folder",
        "-I": "includes makefiles from another folder",
        "--include-dir": "includes makefiles from another folder",
        "-E": "evaluates make code given on the command line",
    },
    "pytest": {
        "-p": "loads a plugin module",
        "-c": "reads another ini file (which can add plugins)",
        "-o": "overrides ini options (addopts = -p ...)",
        "--override-ini": "overrides ini options (addopts = -p ...)",
        "--confcutdir": "changes where conftest.py files are loaded from",
    },
    "npm": _JS_RUNNER,
    "pnpm": _JS_RUNNER,
    "yarn": _JS_RUNNER,
    "bun": {**_JS_RUNNER, "--preload": "loads a module first"},
    "npx": _JS_RUNNER,
    "jest": _JS_RUNNER,
    "vitest": _JS_RUNNER,
    "mocha": {**_JS_RUNNER, "--file": "loads a file before the tests"},
    "node": {"-r": "loads a module first", "-e": "runs code given on the command line", "-p": "runs code given on the command line"},
    "tox": {"-c": "reads another tox.ini", "--conf": "reads another tox.ini"},
    "nox": {"-f": "reads another noxfile", "--noxfile": "reads another noxfile"},
    "rake": {"-f": "reads another Rakefile", "--rakefile": "reads another Rakefile", "-r": "loads a library", "-I": "adds a library folder"},
    "ruby": {"-r": "loads a library", "-I": "adds a library folder", "-e": "runs code given on the command line"},
    "perl": {"-M": "loads a module", "-I": "adds a library folder", "-e": "runs code given on the command line"},
    "cargo": {"--manifest-path": "builds another crate (its build.rs runs)", "-Z": "unstable options, some run code"},
    "go": {"-exec": "runs test binaries through another program", "-toolexec": "runs the compiler through another program",
           "-overlay": "replaces source files", "-modfile": "reads another go.mod"},
    "mvn": {"-f": "builds another pom.xml", "--file": "builds another pom.xml", "-s": "reads another settings.xml", "--settings": "reads another settings.xml"},
    "gradle": {"-b": "runs another build file", "--build-file": "runs another build file", "-c": "reads another settings file",
               "-I": "runs an init script", "-p": "builds another folder", "--project-dir": "builds another folder"},
    "git": {"--ext-diff": "runs the configured external diff program", "--textconv": "runs text conversion filters",
            "--upload-pack": "runs another program on the remote side", "--receive-pack": "runs another program",
            "--open-files-in-pager": "runs a pager program", "-O": "runs a pager program"},
    "eslint": {"-c": "reads another configuration file", "--rulesdir": "loads rules from a folder",
               "--resolve-plugins-relative-to": "loads plugins from another folder"},
}
PROGRAMS["py.test"] = PROGRAMS["pytest"]
PROGRAMS["gradlew"] = PROGRAMS["gradle"]
PROGRAMS["./gradlew"] = PROGRAMS["gradle"]

# Variables set in front of a command that make it load code.
ENV: dict[str, str] = {
    "PYTEST_ADDOPTS": "adds pytest options (-p plugin)",
    "PYTEST_PLUGINS": "loads pytest plugins",
    "PYTHONPATH": "puts other modules first on the import path",
    "PYTHONSTARTUP": "runs a start-up file",
    "PYTHONHOME": "uses another Python library",
    "NODE_OPTIONS": "passes --require to node",
    "NODE_PATH": "puts other modules on the import path",
    "LD_PRELOAD": "loads a library into every program",
    "LD_LIBRARY_PATH": "loads libraries from another folder",
    "BASH_ENV": "runs a start-up file in every bash script",
    "ENV": "runs a start-up file in every sh script",
    "MAKEFLAGS": "adds make options (-f, --eval)",
    "MAKEFILES": "reads more makefiles",
    "PERL5OPT": "adds perl options (-M)",
    "PERL5LIB": "puts other modules first",
    "RUBYOPT": "adds ruby options (-r)",
    "RUBYLIB": "puts other libraries first",
    "RUSTC_WRAPPER": "runs the compiler through another program",
    "RUSTC": "uses another compiler",
    "GIT_EXTERNAL_DIFF": "runs another diff program",
    "GIT_PAGER": "runs another pager",
    "PAGER": "runs another pager",
    "GIT_SSH_COMMAND": "runs another ssh program",
    "GIT_EXEC_PATH": "runs git's helpers from another folder",
    "PATH": "finds programs in another folder first",
}
ENV_PREFIXES: dict[str, str] = {
    "npm_config_": "sets npm configuration (script-shell, node-options)",
    "NPM_CONFIG_": "sets npm configuration",
    "GIT_CONFIG": "sets git configuration",
    "CARGO_": "sets cargo configuration",
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@lru_cache(maxsize=128)
def _options(program: str) -> dict[str, str]:
    name = os.path.basename(program)
    name = re.sub(r"[\d.]+$", "", name) or name  # python3.12, node18
    return {**GENERIC, **PROGRAMS.get(name, {})}


def _word_pairs(word: str, following: str, options: dict[str, str]) -> list[tuple[str, str]]:
    """The (option, value) pairs one word carries (`--config=x`, `-pevil`, `-qp evil`)."""
    found: list[tuple[str, str]] = []
    if word.startswith("--"):
        name, eq, value = word.partition("=")
        if name in options:
            found.append((name, value if eq else following))
        return found
    if word.startswith("-") and len(word) > 1:
        exact = word if word in options else None
        if exact is not None and len(word) > 2:  # single-dash long options (go's -toolexec)
            return [(word, following)]
        name, eq, value = word.partition("=")
        if len(name) > 2 and name in options:
            return [(name, value if eq else following)]
        for i, letter in enumerate(word[1:], 1):
            flag = "-" + letter
            if flag in options:
                rest = word[i + 1 :]
                found.append((flag, rest if rest else following))
                break  # what follows the letter is its value
    return found


def loading_pairs(words: tuple[str, ...] | list[str], assignments: tuple[str, ...] | list[str] = ()) -> list[tuple[str, str]]:
    """Every code-loading option (with its value) and variable (with its value) of one simple command."""
    found: list[tuple[str, str]] = []
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if name in ENV or any(name.startswith(p) for p in ENV_PREFIXES):
            found.append((name + "=", value))
    if not words:
        return found
    options = _options(words[0])
    for i, word in enumerate(words[1:], 1):
        if word == "--":  # what follows goes to the script or runner (`npm test -- --config x`)
            options = {**options, **_JS_RUNNER}
            continue
        following = words[i + 1] if i + 1 < len(words) else ""
        found += _word_pairs(word, following, options)
    return found


def reasons(words: tuple[str, ...] | list[str], assignments: tuple[str, ...] | list[str] = ()) -> list[str]:
    """One line per code-loading word of the command: ``-p (loads a plugin module)``."""
    options = {**_options(words[0]), **_JS_RUNNER} if words else {}
    out: list[str] = []
    for name, _ in loading_pairs(words, assignments):
        why = ENV.get(name[:-1]) if name.endswith("=") else options.get(name, GENERIC.get(name, ""))
        if name.endswith("=") and why is None:
            why = next((v for p, v in ENV_PREFIXES.items() if name.startswith(p)), "")
        out.append(f"{name.rstrip('=')} ({why})")
    return out


def covered(pattern: str, words: tuple[str, ...] | list[str], assignments: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether an allow rule's pattern spells out every code-loading word of the command: each (option,
    value) of the command must appear in the pattern, its value matched as a glob (`-f *` covers any file)."""
    needed = loading_pairs(words, assignments)
    if not needed:
        return True
    tokens = pattern.split()
    lead = 0
    while lead < len(tokens) and "=" in tokens[lead] and _NAME.match(tokens[lead].split("=", 1)[0]):
        lead += 1
    offered = loading_pairs(tokens[lead:], tokens[:lead])
    return all(any(n == m and fnmatch.fnmatchcase(v, pv) for m, pv in offered) for n, v in needed)
