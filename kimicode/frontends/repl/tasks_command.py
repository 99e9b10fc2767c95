"""``/tasks``: the session's background tasks (state, runtime, ports, last line); ``/tasks stop ID`` ends one.
And the line printed when a task ends by itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SlashCommand
from kimicode.tools.base import ToolError

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl
    from kimicode.frontends.repl.render import Renderer
    from kimicode.tools.background import BackgroundTask

STATE_STYLES = {"running": "cyan", "done": "green", "failed": "red", "stopped": "dim"}


def task_line(task: BackgroundTask) -> str:
    """One line per task: id, state (and exit code), runtime, command, ports, last line."""
    minutes, seconds = divmod(int(task.runtime), 60)
    runtime = f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
    state = task.state if task.exit_code is None or task.state == "stopped" else f"{task.state} ({task.exit_code})"
    ports = " · " + ", ".join(f"127.0.0.1:{port}" for port in task.ports) if task.ports else ""
    last = f" · {task.last_line}" if task.last_line else ""
    return f"  {task.id:>3}  {state:<11} {runtime:>7}  {task.command[:60]}{ports}{last}"


def report_end(task: BackgroundTask, renderer: Renderer) -> None:
    """One line when a background task ends by itself (done or failed), while the session goes on."""
    if task.state in ("done", "failed") and task.ended is not None:
        code = f"exit {task.exit_code}" if task.exit_code is not None else "ended"
        last = f" — {task.last_line}" if task.last_line else ""
        line = f"task {task.id} ({task.command[:60]}) {task.state}, {code}, after {task.runtime:.0f}s{last}"
        if task.state == "failed":
            renderer.warn(line)
        else:
            renderer.dim(line)


async def _tasks(repl: ReplControl, arg: str) -> None:
    words = arg.split()
    if words and words[0] == "stop":
        if len(words) != 2:
            repl.renderer.error("give the task to stop: /tasks stop ID (/tasks lists them)")
            return
        try:
            task = await repl.tasks.stop(words[1])
        except ToolError as exc:
            repl.renderer.error(str(exc))
            return
        repl.renderer.info(f"  task {task.id} {task.state} after {task.runtime:.0f}s: {task.command[:80]}")
        return
    if words:
        repl.renderer.error(f"unknown /tasks argument '{arg}': use /tasks or /tasks stop ID")
        return
    tasks = list(repl.tasks.tasks.values())
    if not tasks:
        repl.renderer.dim("no background tasks in this session (the model starts them with bash background: true)")
        return
    for task in tasks:
        repl.renderer.listing(task_line(task), STATE_STYLES.get(task.state, ""))


COMMAND = SlashCommand(
    "tasks", "background tasks: state, runtime, last line; /tasks stop ID ends one", _tasks, "[stop ID]", while_running=True
)
