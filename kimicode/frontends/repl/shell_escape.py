"""``!cmd`` at the prompt: run a shell command yourself and hand its output to the next message.

The command is the user's own, typed at their keyboard, so it runs as if typed in their shell: no
approval question and no sandbox (the policy and the sandbox exist to hold back what the model decides;
here nobody but the user decides, and ``!npm install`` must reach the network). What it shares with the
model's ``bash`` is everything that keeps the session safe and bounded: it runs in the workspace with
``bash -c``, stdin closed, in its own process group that Ctrl-C kills whole, with kimicode's API keys
withheld from its environment, and its output is bounded (head and tail) and passes the secret redactor
before the model sees it.

The output is shown (the first lines) and goes with the next message as a text part before what is typed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from typing import TYPE_CHECKING

from kimicode.llm.messages import text_part
from kimicode.security.redact import redact
from kimicode.tools.base import truncate_middle
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl

TIMEOUT_S = 600  # the user can Ctrl-C sooner; this only stops a command forgotten in the background
SHOWN_LINES = 20
CONTEXT_CHARS = 8_000  # of one command's output, in the next message


async def run_shell_escape(repl: ReplControl, command: str) -> None:
    from kimicode.tools.bash import BashTool

    if not command.strip():
        repl.renderer.error("give a command after !, for example: !git status")
        return
    ctx = dataclasses.replace(repl.runtime.ctx, sandbox=None)
    run = asyncio.ensure_future(BashTool().run({"command": command, "timeout": TIMEOUT_S}, ctx))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, run.cancel)
    try:
        result = await run
    except asyncio.CancelledError:
        repl.renderer.warn(f"!{command} interrupted; its processes were stopped")
        return
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    output = redact(result.text.rstrip("\n"))
    lines = output.splitlines()
    shown, hidden = lines[:SHOWN_LINES], max(len(lines) - SHOWN_LINES, 0)
    for line in shown:
        repl.renderer.listing(f"  {line}", "dim")
    if hidden:
        repl.renderer.dim(f"  … +{plural(hidden, 'line')}")
    block = f'<shell command="{_attribute(command)}">\n{truncate_middle(output, CONTEXT_CHARS)}\n</shell>'
    repl.attach_part(text_part(f"The user ran this shell command in the workspace; its output follows.\n{block}"))
    repl.renderer.dim("  (the output goes with your next message)")


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace("\n", " ")
