"""`kimicode rewind SESSION_ID N [--code-only|--conversation-only]`: go back to just before the session's
N-th user message (1-based, counted as kimicode.session.rewind counts them), as a fork: the conversation
up to there becomes a new session (its id is printed on stdout) and the files go back to the checkpoint
taken when that message's turn began. The original session is left as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kimicode.manage.common import fail as _fail


def register_rewind(app: typer.Typer) -> None:
    @app.command("rewind")
    def rewind(
        session_id: Annotated[str, typer.Argument(metavar="SESSION_ID", help="The session (id or unique prefix).")],
        number: Annotated[int, typer.Argument(metavar="N", help="Which user message: 1 is the first one written.")],
        code_only: Annotated[bool, typer.Option("--code-only", help="Restore the files only; no new session.")] = False,
        conversation_only: Annotated[
            bool, typer.Option("--conversation-only", help="Fork the conversation only; leave the files.")
        ] = False,
        work_dir: Annotated[Optional[Path], typer.Option("-w", "--work-dir", help="Workspace (default: current).")] = None,
    ) -> None:
        """Go back to just before a user message of a session: a new session (its id printed) and the files."""
        from kimicode.config import ConfigError, load_config
        from kimicode.frontends.common.sessions import SessionNotFound, session_store
        from kimicode.session.rewind import fork_before, user_turns
        from kimicode.vcs.marks import MarkError, restore_mark

        if code_only and conversation_only:
            raise _fail("--code-only and --conversation-only exclude each other; give at most one")
        try:
            config = load_config(work_dir=work_dir)
        except ConfigError as exc:
            raise _fail(str(exc)) from exc
        store = session_store(config)
        try:
            source = store.open(session_id, config.work_dir)
        except SessionNotFound as exc:
            raise _fail(str(exc)) from exc
        turns = user_turns(source)
        if not 1 <= number <= len(turns):
            raise _fail(f"session {source.id} has {len(turns)} user message(s); N must be 1 to {len(turns)}")
        turn = turns[number - 1]
        if not conversation_only and turn.checkpoint is None:
            if code_only:
                raise _fail(f"no file checkpoint was taken before message {number}; nothing restored")
            typer.echo(f"kimicode: no file checkpoint before message {number}; the files are left as they are", err=True)
        fork_id = ""
        if not code_only:
            fork = fork_before(store, source, turn, source.model or config.model, source.mode or config.mode)
            fork.close()
            fork_id = fork.id
        if not conversation_only and turn.checkpoint is not None:
            try:
                report = restore_mark(turn.checkpoint, config.work_dir, config.home, before_label=fork_id or source.id)
            except MarkError as exc:
                raise _fail(f"files not restored: {exc}") from exc
            for path in report.restored:
                typer.echo(f"restored {path}", err=True)
            for path in report.deleted:
                typer.echo(f"removed  {path}", err=True)
        if fork_id:
            typer.echo(fork_id)
