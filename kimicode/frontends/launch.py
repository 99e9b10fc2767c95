"""Start a front end from the CLI: check what a run needs, build the runtime, map failures to exit codes."""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path
from typing import Any

from kimicode.config import Config
from kimicode.frontends.common.media import MediaError, load_media
from kimicode.frontends.headless.printer import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, compose_task

NO_KEY = (
    "no API key: set KIMI_API_KEY (or MOONSHOT_API_KEY), or put api_key = \"...\" in {home}/config.toml "
    "(get a key at https://platform.moonshot.ai)"
)


def _say(message: str) -> None:
    sys.stderr.write(f"kimicode: {message}\n")
    sys.stderr.flush()


def _read_stdin() -> str | None:
    if sys.stdin is None or sys.stdin.isatty():
        return None
    try:
        return sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        _say(f"could not read stdin ({exc}); pass the task as an argument instead")
        return None


def ignored_line(config: Config) -> str:
    """One line naming the project settings left out because the folder is not trusted, and how to trust it."""
    return (
        f"this folder is not trusted, so its own settings were ignored: {'; '.join(config.ignored_project_settings)} "
        "(to use them: `kimicode trust`, or --trust for one run)"
    )


def launch_headless(config: Config, task_arg: str | None, fmt: str, options: dict[str, Any]) -> int:
    task = compose_task(task_arg, _read_stdin())
    if not task:
        _say("no task: give it as an argument (kimicode -p \"fix the failing test\") or on stdin")
        return EXIT_USAGE
    from kimicode.config import user_endpoint
    from kimicode.llm.endpoint import keyless_ok
    from kimicode.llm.setup import model_setup

    flag_url = (options.get("flags") or {}).get("base_url")
    if not config.api_key and not keyless_ok(config.base_url, user_endpoint(config.home, flag=flag_url)):
        _say(NO_KEY.format(home=config.home))
        return EXIT_USAGE
    model = model_setup(config)  # the model and endpoint facts, derived once for the whole run
    for notice in model.notices():
        _say(notice)
    try:
        media, parts = load_media(config, options.get("images") or [], options.get("video"), model.profile)
    except MediaError as exc:  # unreadable media is a usage problem, said in one line
        _say(str(exc))
        return EXIT_USAGE
    from kimicode.agent.runtime import build_runtime
    from kimicode.frontends.headless.printer import run_headless
    from kimicode.frontends.common.sessions import SessionInUse, SessionNotFound, fork_notice, fork_session, open_session

    resume = options.get("resume")
    if resume is not None and not resume.strip():
        _say("-r needs a session id in a non-interactive run; `kimicode sessions` lists them")
        return EXIT_USAGE
    try:
        opened = open_session(config, bool(options.get("continue_session")), resume)
    except SessionNotFound as exc:
        _say(str(exc))
        return EXIT_USAGE
    except SessionInUse as busy:  # nobody to ask: keep the other process's log intact and say where this one went
        opened = fork_session(config, busy)
        _say(fork_notice(busy, opened.session))
    for warning in opened.warnings:
        _say(f"session {opened.session.id}: {warning}")
    if config.ignored_project_settings:  # headless never asks: it says once what it left out
        _say(ignored_line(config))
    from kimicode.security.orphans import adopt_orphans, end_orphans
    from kimicode.frontends.common.signals import cancel_on_signals, exit_code_for

    adopt_orphans()  # what an unsandboxed command leaves running ends with the session
    received: list[Any] = []  # the stop signal (SIGINT/SIGTERM/SIGHUP) that ended the run, if one did
    try:
        runtime = build_runtime(config, session_id=opened.session.id, headless=True, model=model)

        async def run_and_close() -> int:
            try:
                return await run_headless(runtime, task, fmt, media, parts, opened)
            finally:
                await runtime.aclose()

        code = asyncio.run(cancel_on_signals(run_and_close(), received))
        return exit_code_for(received[0]) if received else code
    except (KeyboardInterrupt, asyncio.CancelledError):
        _say(f"interrupted by {received[0].name}" if received else "interrupted")
        return exit_code_for(received[0]) if received else EXIT_INTERRUPTED
    except Exception as exc:
        if config.debug:
            traceback.print_exc()
        _say(f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return EXIT_FAILED
    finally:
        opened.session.close()
        end_orphans()


def launch_repl(config: Config, task: str | None, options: dict[str, Any]) -> int:
    from kimicode.frontends.repl.app import run_repl
    from kimicode.frontends.repl.trust_prompt import settle_trust

    try:
        config = settle_trust(config, options.get("flags") or {})
    except (EOFError, KeyboardInterrupt):
        return EXIT_INTERRUPTED

    return run_repl(config, task, options)
