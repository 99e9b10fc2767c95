"""A custom command used: its template with the arguments put in, files included and command output read.

- ``$ARGUMENTS`` (Gemini: ``{{args}}``) is everything after the command's name; ``$1``…``$9`` its words
  (shell-style quoting). A template with no placeholder gets the arguments appended. Inside a ``!`` command
  they are shell-quoted words.
- ``@path`` (Gemini: ``@{path}``) includes a file of the workspace, bounded and passed through the secret
  redactor; a path leading out of the workspace, or a secret path (the policy's list: ``.env``, keys …),
  stops the command with one line. A word that names no file
  stays as it is (``@decorator``, an e-mail address).
- ``!`cmd` `` (Gemini: ``!{cmd}``) puts the command's output in its place. Only in a trusted folder, and
  only as any ``bash`` call runs: ``Policy.decide`` says whether, the sandbox holds it (``policed_shell``).
  Nobody is asked: a command the policy would ask about is refused with one line, nothing sent.

The template is read once, left to right: what the arguments bring, a command prints or a file holds is
never expanded again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.extensions.commands import CustomCommand
from kimicode.security.redact import redact

if TYPE_CHECKING:
    from kimicode.security.policy import Policy
    from kimicode.tools.base import ToolContext

MAX_INCLUDE_CHARS = 20_000  # of one included file
MAX_INCLUDES = 10
MAX_SHELL_CHARS = 8_000  # of one command's output
MAX_SHELL_LINES = 5  # ``!`` commands in one template
SHELL_TIMEOUT_S = 120
CLEAN_EXIT = "[exit code: 0]"  # how the bash tool ends the output of a command that succeeded

ShellRunner = Callable[[str], Awaitable[str]]

_ARGUMENTS = re.compile(r"\$(ARGUMENTS|[1-9])|\{\{args\}\}")
# ``!`cmd` `` / ``!{cmd}``; ``@{path}`` / ``@path`` (at the start or after white space).
_SPECIAL = re.compile(r"!`(?P<cmd>[^`\n]+)`|!\{(?P<gcmd>(?:[^{}\n]|\{\{args\}\})+)\}|@\{(?P<gpath>[^}\n]+)\}|(?<!\S)@(?P<path>[^\s`'\"(),;]+)")


class ExpansionError(Exception):
    """The command cannot be used as it is; the message is one line and nothing was sent."""


def has_shell(template: str) -> bool:
    return any(match.group("cmd") or match.group("gcmd") for match in _SPECIAL.finditer(template))


class _Arguments:
    """The arguments, put into the template's pieces; remembers whether any placeholder took them."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.words = shlex.split(text)
        except ValueError:  # an unclosed quote: plain words then
            self.words = text.split()
        self.used = False

    def fill(self, piece: str, quoted: bool = False) -> str:
        """``piece`` with its placeholders replaced; ``quoted``: as shell words (inside a ``!`` command, so
        the arguments stay arguments: ``; rm -rf ~`` is one quoted word, never a second command)."""

        def put(match: re.Match[str]) -> str:
            self.used = True
            key = match.group(1)
            if key is None or key == "ARGUMENTS":
                return " ".join(shlex.quote(word) for word in self.words) if quoted else self.text
            index = int(key) - 1
            word = self.words[index] if index < len(self.words) else ""
            return shlex.quote(word) if quoted else word

        return _ARGUMENTS.sub(put, piece)

    def tail(self) -> str:
        """What to append when no placeholder took the arguments."""
        return f"\n\n{self.text}" if self.text and not self.used else ""


def substitute(command: CustomCommand, arguments: str) -> str:
    """The template with the arguments in place (no file read, nothing run)."""
    given = _Arguments(arguments)
    text = given.fill(command.template)
    return f"{text.rstrip()}{given.tail()}" if given.tail() else text


async def expand(
    command: CustomCommand, arguments: str, workspace: Path, shell: ShellRunner | None, *, includes: bool = True
) -> str:
    """The prompt to send. ``shell`` is None where ``!`` commands may not run (a folder not trusted).
    ``includes=False`` leaves ``@path`` as written, for a front end that attaches mentions itself (the REPL
    does, for every message: one way, not two).

    Only the template's own ``!`` and ``@`` count: the arguments are put in after the template is read, so
    an argument (an issue title handed to ``kimicode -p "/triage …"``) can never add a command or a file."""
    template = command.template
    if shell is None and has_shell(template):
        raise ExpansionError(
            f"/{command.name} runs shell commands (!`…`) and this folder is not trusted, so nothing was sent "
            "(`kimicode trust`, or --trust for one run)"
        )
    given = _Arguments(arguments)
    pieces: list[str] = []
    position = files = runs = 0
    for match in _SPECIAL.finditer(template):
        pieces.append(given.fill(template[position : match.start()]))
        position = match.end()
        shell_command = match.group("cmd") or match.group("gcmd")
        if shell_command is not None:
            runs += 1
            if runs > MAX_SHELL_LINES or shell is None:
                raise ExpansionError(f"/{command.name} runs more than {MAX_SHELL_LINES} shell commands; nothing was sent")
            pieces.append(await shell(given.fill(shell_command, quoted=True)))
            continue
        raw = given.fill(match.group("gpath") or match.group("path") or "")
        included = _include(raw.rstrip(".:!?"), workspace, command.name) if includes else None
        if included is None:
            pieces.append(given.fill(match.group(0)))
            continue
        files += 1
        if files > MAX_INCLUDES:
            raise ExpansionError(f"/{command.name} includes more than {MAX_INCLUDES} files; nothing was sent")
        pieces.append(included + raw[len(raw.rstrip(".:!?")) :])
    pieces.append(given.fill(template[position:]))
    text = "".join(pieces)
    return f"{text.rstrip()}{given.tail()}" if given.tail() else text


def _include(raw: str, workspace: Path, name: str) -> str | None:
    """The file's text in a block, None when ``raw`` names no file (the word stays as written)."""
    if not raw:
        return None
    candidate = Path(raw).expanduser()
    candidate = candidate if candidate.is_absolute() else workspace / candidate
    try:
        real = candidate.resolve()
        if not real.is_file():
            return None
    except OSError:
        return None
    root = workspace.resolve()
    if real != root and root not in real.parents:
        raise ExpansionError(f"/{name}: @{raw} is outside the workspace, so it is not included; nothing was sent")
    from kimicode.config import kimicode_home
    from kimicode.security.paths import secret_reason

    secret = secret_reason(candidate, kimicode_home()) or secret_reason(real, kimicode_home())
    if secret:  # the policy's one list: what `view` refuses and `@path` in a message leaves out
        raise ExpansionError(f"/{name}: @{raw} is {secret}, so it is not included; nothing was sent")
    try:
        with real.open(encoding="utf-8", errors="replace") as file:
            content = file.read(MAX_INCLUDE_CHARS + 1)
    except OSError as exc:
        raise ExpansionError(f"/{name}: cannot read @{raw} ({exc.strerror or exc}); nothing was sent") from None
    if len(content) > MAX_INCLUDE_CHARS:
        content = content[:MAX_INCLUDE_CHARS] + f"\n[… cut at {MAX_INCLUDE_CHARS:,} characters]"
    shown = real.relative_to(root).as_posix()
    return f'<file path="{shown}">\n{redact(content)}\n</file>'


def policed_shell(policy: Policy, ctx: ToolContext) -> ShellRunner:
    """Runs a template's ``!`` command as the model's ``bash`` would run: decided by the policy, inside the
    session's sandbox, keys withheld, output bounded and redacted. Refused when not simply allowed."""

    async def run(command: str) -> str:
        from kimicode.security.decision import Action
        from kimicode.tools.base import ToolError, truncate_middle
        from kimicode.tools.bash import BashTool

        tool = BashTool()
        args = {"command": command, "timeout": SHELL_TIMEOUT_S}
        decision = policy.decide(tool, args, ctx)
        if decision.action != Action.ALLOW:
            raise ExpansionError(
                f"!`{command}` was not run ({decision.reason}; a command's ! lines run only what the "
                "permission rules allow without asking); nothing was sent"
            )
        run_ctx = ctx
        if decision.read_only_everything and ctx.sandbox is not None and ctx.sandbox.active:
            run_ctx = replace(ctx, sandbox=replace(ctx.sandbox, read_only_everything=True))
        try:
            result = await tool.run(args, run_ctx)
        except ToolError as exc:
            raise ExpansionError(f"!`{command}` failed: {exc}; nothing was sent") from None
        text = result.text.rstrip("\n")
        if text.endswith(CLEAN_EXIT):  # a clean exit needs no note in the prompt; a failure keeps its code
            text = text[: -len(CLEAN_EXIT)].rstrip("\n")
        return truncate_middle(redact(text), MAX_SHELL_CHARS)

    return run
