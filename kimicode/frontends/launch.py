"""The CLI's door into the front ends: the REPL for a terminal, headless otherwise, ACP for `kimicode acp`."""

from __future__ import annotations

from typing import Any

from kimicode.config import Config
from kimicode.frontends.common.quick_exit import arm

EXIT_INTERRUPTED = 130


def launch_headless(config: Config, task: str | None, fmt: str, options: dict[str, Any]) -> int:
    from kimicode.frontends.headless.run import launch_headless as run

    code = run(config, task, fmt, options)
    arm()  # its session closed, its sandboxes and commands ended: the process may end at once
    return code


def launch_repl(config: Config, task: str | None, options: dict[str, Any]) -> int:
    from kimicode.frontends.repl.app import run_repl
    from kimicode.frontends.repl.trust_prompt import settle_trust

    try:
        config = settle_trust(config, options.get("flags") or {})
    except (EOFError, KeyboardInterrupt):
        return EXIT_INTERRUPTED

    code = run_repl(config, task, options)
    arm()  # its conversation closed, its sandboxes and commands ended: the process may end at once
    return code


def launch_acp(flags: dict[str, Any]) -> int:
    from kimicode.frontends.acp.server import run_acp

    return run_acp(flags)
