"""Commands on the session and the next message: /exit, /clear, /compact, /undo, /diff, /sessions,
/resume, /image, /video. Each is small and leaves the work to the REPL (kimicode.frontends.repl.control)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SlashCommand

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl


async def _exit(repl: ReplControl, arg: str) -> None:
    repl.request_exit()


async def _clear(repl: ReplControl, arg: str) -> None:
    repl.new_session()
    repl.renderer.dim(f"new session {repl.opened.session.id}")


async def _compact(repl: ReplControl, arg: str) -> None:
    await repl.compact_now(arg)


async def _undo(repl: ReplControl, arg: str) -> None:
    await repl.undo()


async def _diff(repl: ReplControl, arg: str) -> None:
    diff = repl.session_diff()
    if not diff.strip():
        repl.renderer.dim("no changes in this session")
    elif arg == "text" or not repl.open_diff_in_editor(diff):
        repl.renderer.unified_diff(diff)


async def _sessions(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.sessions import describe_sessions, session_store

    infos = session_store(repl.config).list(repl.config.work_dir)
    if not infos:
        repl.renderer.dim("no saved sessions for this workspace")
        return
    for line in describe_sessions(infos):
        marker = "*" if line.startswith(repl.opened.session.id) else " "
        repl.renderer.info(f"{marker} {line}")


async def _resume(repl: ReplControl, arg: str) -> None:
    await repl.resume(arg or None)


async def _image(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.media import resolve_user_path

    if not arg:
        repl.renderer.error("give the image's path: /image PATH (or mention it as @file.png)")
        return
    repl.attach_images([resolve_user_path(arg, repl.config.work_dir)])


async def _video(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.media import resolve_user_path

    if not arg:
        repl.renderer.error("give the video's path: /video PATH")
        return
    await repl.attach_video(resolve_user_path(arg, repl.config.work_dir))


COMMANDS = (
    SlashCommand("exit", "leave kimicode (the session is saved)", _exit, while_running=True),
    SlashCommand("quit", "same as /exit", _exit, while_running=True),
    SlashCommand("clear", "start a new session (the old one stays resumable)", _clear),
    SlashCommand("compact", "summarise older history now to free context; the text says what to keep", _compact, "[KEEP]"),
    SlashCommand("undo", "restore the files the last turn changed", _undo),
    SlashCommand(
        "diff", "show what this session changed (in the editor's diff view in VS Code, Cursor, Zed)", _diff, "[text]"
    ),
    SlashCommand("sessions", "list this workspace's sessions", _sessions),
    SlashCommand("resume", "continue a saved session (no ID: pick from a list)", _resume, "[ID]"),
    SlashCommand("image", "attach an image to your next message", _image, "PATH"),
    SlashCommand("video", "attach a video (as sampled frames) to your next message", _video, "PATH"),
)
