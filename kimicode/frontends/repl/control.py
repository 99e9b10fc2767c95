"""What a slash command, a key binding or the plan review may do to the running REPL: one Protocol.

Commands, keys and the plan review depend on this Protocol, never on the REPL class
(kimicode.frontends.repl.app.Repl, which satisfies it), so they sit below it in the import graph and a
newcomer reads here the whole surface they may touch. Invariants:

- The session, its agent and its runtime change under a command's feet (``/clear``, ``/resume``, ``/mode``):
  read ``agent``, ``runtime`` and ``opened`` again after awaiting one of the methods below, never keep them.
- Output goes through ``renderer`` only; a question goes through ``ask_line`` (or
  kimicode.frontends.repl.input.ask_choice), which steps the live prompt aside and brings it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kimicode.agent.loop import Agent
    from kimicode.agent.runtime import Runtime
    from kimicode.config import Config
    from kimicode.frontends.common.sessions import OpenedSession
    from kimicode.frontends.repl.live import LiveArea
    from kimicode.frontends.repl.render import Renderer
    from kimicode.frontends.repl.terminal import Terminal
    from kimicode.mcp.manager import McpManager
    from kimicode.session.rewind import UserTurn
    from kimicode.tools.background import TaskManager


class ReplControl(Protocol):
    # -- what is there (read; the objects themselves may be changed, e.g. ``agent.thinking``) ----------

    @property
    def config(self) -> Config: ...

    @property
    def renderer(self) -> Renderer: ...

    @property
    def terminal(self) -> Terminal: ...

    @property
    def agent(self) -> Agent: ...

    @property
    def runtime(self) -> Runtime: ...

    @property
    def opened(self) -> OpenedSession: ...

    @property
    def tasks(self) -> TaskManager: ...

    @property
    def mcp(self) -> McpManager | None: ...

    @property
    def live(self) -> LiveArea: ...

    # -- the session ------------------------------------------------------------------------------------

    def request_exit(self) -> None:
        """End the REPL once the current command returns (the session is saved)."""

    def new_session(self) -> None: ...

    def switch_to(self, opened: OpenedSession) -> None:
        """Continue in ``opened`` (the current session is saved and released)."""

    async def resume(self, session_id: str | None) -> None:
        """Continue a saved session; None asks which."""

    async def set_mode(self, mode: str) -> None: ...

    async def set_model(self, name: str) -> None: ...

    async def compact_now(self, instruction: str = "") -> None: ...

    async def undo(self) -> None: ...

    async def rewind_to(self, turn: UserTurn, conversation: bool, files: bool) -> None:
        """Go back to just before ``turn``'s message: the conversation as a fork, the files, or both."""

    def prefill_prompt(self, text: str) -> None:
        """The next prompt starts with ``text`` (to edit and send)."""

    def session_diff(self) -> str: ...

    def open_diff_in_editor(self, diff: str) -> bool:
        """Show ``diff`` in the editor this terminal belongs to; False when there is none."""

    # -- the next message -------------------------------------------------------------------------------

    def attach_images(self, paths: list[Path]) -> bool:
        """Attach image files to the next message; False (and one line said) on failure."""

    async def attach_video(self, path: Path) -> bool: ...

    def attach_part(self, part: dict[str, Any]) -> None:
        """A content part (e.g. a shell command's output) that goes with the next message."""

    # -- turns and questions ----------------------------------------------------------------------------

    async def run_turn(self, text: str) -> None: ...

    async def ask_line(self, message: str, password: bool = False) -> str: ...

    # -- working alongside a running turn (the keys) ----------------------------------------------------

    @property
    def turn_running(self) -> bool: ...

    @property
    def can_background(self) -> bool: ...

    def prompt_text(self) -> str: ...

    def cancel_running_turn(self) -> None: ...

    def steer(self, text: str) -> None: ...

    def background_command(self) -> None: ...

    def cycle_stance(self) -> None: ...
