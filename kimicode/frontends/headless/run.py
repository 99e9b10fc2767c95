"""A headless run (`kimicode -p`), top to bottom: the task, its checks, the session, the run, the exit code.

Every exit goes through ``Outcome``: with ``--output-format json`` or ``stream-json`` it prints one result
object (a configuration error included, with its ``error_kind``); with ``text`` one line on stderr.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from kimicode.agent import events as ev
from kimicode.config import NO_KEY, Config
from kimicode.frontends.common.mcp_input import McpInputError, mcp_input
from kimicode.frontends.common.media import MediaError, load_media
from kimicode.frontends.headless.printer import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    HeadlessPrinter,
    compose_task,
    early_exit,
    exit_code,
    headless_approver,
    report_sandbox,
    report_skill_problems,
)
from kimicode.llm.messages import Image

if TYPE_CHECKING:
    from kimicode.llm.setup import ModelSetup

MAX_PROBLEM_LINES = 5  # of custom command files that could not be read


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
    """Run the task; any exception nothing else caught still ends as one line and, in json, a result
    object (``error_kind: "internal"``), never as a traceback."""
    started = time.monotonic()
    opened: list[Any] = []  # the session once one is open, for the error record
    try:
        return _launch(config, task_arg, fmt, options, started, opened)
    except Exception as exc:  # noqa: BLE001 - a bug still ends with one line and the result object, never a traceback
        from kimicode.frontends.headless.crash import internal_error_line

        session = opened[0].session if opened else None
        line = internal_error_line(config, exc, session)
        return early_exit(fmt, "internal", line, EXIT_FAILED, session_id=session.id if session else "", started=started)


def _launch(
    config: Config, task_arg: str | None, fmt: str, options: dict[str, Any], started: float, opened_box: list[Any]
) -> int:
    def stop(kind: str, message: str, code: int = EXIT_USAGE, session_id: str = "") -> int:
        return early_exit(fmt, kind, message, code, session_id=session_id, started=started)

    steering: TextIO | None = None  # --input-format stream-json: later stdin lines steer the running turn
    first_line = 0
    if options.get("input_format") == "stream-json":
        from kimicode.frontends.headless.input_stream import first_message

        task = (task_arg or "").strip()
        if not task:
            task, first_line = first_message(sys.stdin, _say)
        steering = sys.stdin
    else:
        task = compose_task(task_arg, _read_stdin())
    if not task:
        return stop("usage", "no task: give it as an argument (kimicode -p \"fix the failing test\") or on stdin")
    task, mentioned_images = _mentions(config, task)
    if mentioned_images:
        options = {**options, "images": [*(options.get("images") or []), *mentioned_images]}
    from kimicode.config import user_endpoint
    from kimicode.llm.endpoint import keyless_ok
    from kimicode.llm.reach import base_url_line, base_url_problem
    from kimicode.llm.setup import model_setup

    flag_url = (options.get("flags") or {}).get("base_url")
    problem = base_url_problem(config.base_url)
    if problem:  # before anything is started or written: there is no endpoint to talk to
        return stop("config", base_url_line(config.base_url, problem, bool(flag_url)))
    if not config.api_key and not keyless_ok(config.base_url, user_endpoint(config.home, flag=flag_url)):
        return stop("config", NO_KEY.format(home=config.home))
    model = model_setup(config)  # the model and endpoint facts, derived once for the whole run
    for line in model.notices():
        _say(line)
    try:
        media, parts = load_media(config, options.get("images") or [], options.get("video"), model.profile)
    except MediaError as exc:  # unreadable media is a usage problem, said in one line
        return stop("usage", str(exc))
    from kimicode.frontends.common.sessions import (
        SessionInUse,
        SessionNotFound,
        fork_notice,
        fork_session,
        open_session,
    )

    resume = options.get("resume")
    if resume is not None and not resume.strip():
        return stop("usage", "-r needs a session id in a non-interactive run; `kimicode sessions` lists them")
    try:
        opened = open_session(config, bool(options.get("continue_session")), resume)
    except SessionNotFound as exc:
        return stop("session", str(exc))
    except SessionInUse as busy:  # nobody to ask: keep the other process's log intact and say where this one went
        opened = fork_session(config, busy)
        _say(fork_notice(busy, opened.session))
    opened_box.append(opened)
    for warning in opened.warnings:
        _say(f"session {opened.session.id}: {warning}")
    if config.ignored_project_settings:  # headless never asks: it says once what it left out
        _say(ignored_line(config))
    from kimicode.frontends.common.quick_exit import release_watches
    from kimicode.frontends.common.signals import cancel_on_signals, exit_code_for
    from kimicode.security.orphans import adopt_orphans, end_orphans

    _load_run_modules(config, model)

    adopt_orphans()  # what an unsandboxed command leaves running ends with the session
    received: list[Any] = []  # the stop signal (SIGINT/SIGTERM/SIGHUP) that ended the run, if one did
    try:
        work = run_headless(config, opened, task, fmt, media, parts, steering=steering, first_line=first_line, model=model)
        code = asyncio.run(cancel_on_signals(work, received))
        return exit_code_for(received[0]) if received else code
    except (KeyboardInterrupt, asyncio.CancelledError):
        why = f"interrupted by {received[0].name}" if received else "interrupted"
        code = exit_code_for(received[0]) if received else EXIT_INTERRUPTED
        return stop("interrupted", why, code, session_id=opened.session.id)
    except Exception as exc:  # noqa: BLE001 - said here, while the session can still take the traceback
        from kimicode.frontends.headless.crash import internal_error_line

        line = internal_error_line(config, exc, opened.session)
        return stop("internal", line, EXIT_FAILED, session_id=opened.session.id)
    finally:
        try:
            _end_early()
        finally:  # (the session log is closed whatever happened above)
            opened.session.close()
            end_orphans()
            release_watches()


def _end_early() -> None:
    """What takes the kernel a while to end, started first, so that it ends while the session is closed:
    the idle session sandboxes are sent SIGKILL (end_orphans reaps them). (Only where the run loaded them.)"""
    sessions = sys.modules.get("kimicode.security.sandbox_session")
    if sessions is not None:
        sessions.kill_all()


def _mentions(config: Config, task: str) -> tuple[str, list[Any]]:
    """``@path`` as in the REPL: a text file's content goes with the task, an image as an image; a file
    over the size limit is named on stderr (the run goes on without it)."""
    from kimicode.frontends.common.media import expand_mentions, image_mentions

    images = image_mentions(task, config.work_dir)  # the task's own mentions, not those in attached files
    expanded, attached, problems = expand_mentions(task, config.work_dir)
    for line in problems:
        _say(line)
    for name in attached:
        _say(f"attached {name}")
    return expanded, images


def _load_run_modules(config: Config, model: ModelSetup) -> None:
    """What the run needs, loaded now, while the collector is paused (frontends/common/heap.py); the first
    request needs the SDK, so the task checks above are what may spare its import. The sandbox is probed
    meanwhile, and the machine asked what the SDK will ask it: both mostly wait for a process (bubblewrap,
    uname), which the import can use; so is a GET /models the client would ask before its first request.
    The TLS context is made there too: its certificates load without the interpreter's lock (llm/tls.py)."""
    import threading

    if model.endpoint.needs_models_probe():
        from kimicode.llm.early_models import ask_models_early

        ask_models_early(config.base_url, config.api_key)

    import kimicode.frontends.common.assembly  # noqa: F401 - loaded for the run below
    from kimicode.agent.runtime import probe_sandbox
    from kimicode.frontends.common.heap import loaded
    from kimicode.llm.client import load_sdk
    from kimicode.llm.sdk_import import ask_platform
    from kimicode.llm.tls import make_tls_context_ahead

    def probe() -> None:
        probe_sandbox(config)
        ask_platform()
        make_tls_context_ahead()

    probing = threading.Thread(target=probe, name="sandbox-probe", daemon=True)
    probing.start()
    load_sdk()
    probing.join()
    loaded()


async def run_headless(
    config: Config,
    opened: Any,
    task: str,
    fmt: str,
    images: list[Image] | None = None,
    parts: list[dict[str, Any]] | None = None,
    *,
    steering: TextIO | None = None,
    first_line: int = 0,
    model: ModelSetup | None = None,
) -> int:
    """``steering``: a stream of stream-json user messages that steer the running turn (read to its end)."""
    from kimicode.frontends.common.assembly import assembled_run

    printer = HeadlessPrinter(config, opened.session.id, fmt)
    notice = printer.notice
    async with assembled_run(
        config, opened, headless_approver(), report=notice, headless=True, mcp_wait=config.mcp_startup_wait, model=model
    ) as run:
        from kimicode.extensions.commands import find_commands
        from kimicode.extensions.summary import extension_counts

        commands = find_commands(config.work_dir, config.home)
        extensions = extension_counts(
            config.work_dir, config.home, counts={"commands": len(commands), "hooks": len(run.runtime.hooks or ())},
            trusted=config.trusted,
        )
        printer.start(list(run.agent.current_tools()), extensions)  # what the first request offers
        report_skill_problems(run.runtime, notice)
        report_sandbox(run.runtime, notice)
        for problem in commands.problems[:MAX_PROBLEM_LINES]:
            notice(f"custom command not read: {problem}")
        agent = run.agent
        if task.startswith("/"):  # a custom command: its template, expanded, is the task
            from kimicode.extensions.commands_expand import ExpansionError
            from kimicode.extensions.commands_use import expand_message, tool_gate

            try:
                used = await expand_message(
                    task, commands, config.work_dir, trusted=config.trusted, policy=agent.policy, ctx=agent.ctx
                )
            except ExpansionError as exc:
                return early_exit(fmt, "usage", str(exc), EXIT_USAGE, session_id=opened.session.id)
            if used is not None:
                task = used.prompt
                agent.tool_gate = tool_gate(used.command)
        try:  # a server's prompt as /mcp__SERVER__PROMPT, its resources as @SERVER:URI
            task, images, _ = await mcp_input(task, images, run.mcp)
        except McpInputError as exc:
            return early_exit(fmt, "usage", str(exc), EXIT_USAGE, session_id=opened.session.id)
        if steering is not None:
            from kimicode.frontends.headless.input_stream import follow

            follow(steering, agent.steer, notice, first_line)
        result: ev.RunResult | None = None
        events = agent.run(task, images, parts)
        try:
            async for event in events:
                if isinstance(event, ev.Done):
                    result = event.result
                else:
                    printer.event(event)
        except asyncio.CancelledError:
            await events.aclose()
            result = ev.RunResult("interrupted", "interrupted by the user", submitted=False, num_steps=0)
            result.usage = agent.totals.as_dict()
    assert result is not None
    printer.finish(result)
    return exit_code(result)
