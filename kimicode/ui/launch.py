"""Start a front end from the CLI: check what a run needs, build the runtime, map failures to exit codes."""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path
from typing import Any

from kimicode.config import Config
from kimicode.ui.headless import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, compose_task

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


class MediaError(Exception):
    """Attached media that cannot be sent; the message is one line for the user."""


def load_media(config: Config, images: list[Path], video: Path | None) -> tuple[list[Any], list[dict[str, Any]]]:
    """Images (and sampled video frames) for the first message, plus other parts (an uploaded video)."""
    if not images and video is None:
        return [], []
    from kimicode.llm.profiles import profile_for
    from kimicode.vision.errors import VisionError
    from kimicode.vision.images import encode_image_file

    profile = profile_for(config.model)
    if not profile.vision:
        raise MediaError(f"model {config.model} does not accept images; use a vision model such as kimi-k2.5")
    try:
        media = [encode_image_file(path, profile.image_max_tokens) for path in images]
        parts: list[dict[str, Any]] = []
        if video is not None and config.video_input == "upload":
            from kimicode.vision.video import upload_video_native, video_url_part

            if not profile.video:
                raise MediaError(f"model {config.model} does not accept video uploads; set video_input = \"frames\"")
            file_id = asyncio.run(upload_video_native(config.base_url, config.api_key, video))
            parts.append(video_url_part(file_id))
        elif video is not None:
            from kimicode.vision.video import sample_video

            media.extend(
                sample_video(video, max_frames=config.video_max_frames, token_budget=config.video_token_budget)
            )
    except VisionError as exc:
        raise MediaError(str(exc)) from exc
    return media, parts


def launch_headless(config: Config, task_arg: str | None, fmt: str, options: dict[str, Any]) -> int:
    task = compose_task(task_arg, _read_stdin())
    if not task:
        _say("no task: give it as an argument (kimicode -p \"fix the failing test\") or on stdin")
        return EXIT_USAGE
    if not config.api_key:
        _say(NO_KEY.format(home=config.home))
        return EXIT_USAGE
    try:
        media, parts = load_media(config, options.get("images") or [], options.get("video"))
    except MediaError as exc:  # unreadable media is a usage problem, said in one line
        _say(str(exc))
        return EXIT_USAGE
    from kimicode.agent.runtime import build_runtime
    from kimicode.ui.headless import run_headless
    from kimicode.ui.sessions import SessionInUse, SessionNotFound, fork_notice, fork_session, open_session

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
    from kimicode.ui.signals import cancel_on_signals, exit_code_for

    adopt_orphans()  # what an unsandboxed command leaves running ends with the session
    received: list[Any] = []  # the stop signal (SIGINT/SIGTERM/SIGHUP) that ended the run, if one did
    try:
        runtime = build_runtime(config, session_id=opened.session.id, headless=True)
        code = asyncio.run(cancel_on_signals(run_headless(runtime, task, fmt, media, parts, opened), received))
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
    from kimicode.ui.repl import run_repl
    from kimicode.ui.trust_prompt import settle_trust

    try:
        config = settle_trust(config, options.get("flags") or {})
    except (EOFError, KeyboardInterrupt):
        return EXIT_INTERRUPTED

    return run_repl(config, task, options)
