"""An unexpected exception in a headless run: one line for the user, the traceback kept for a bug report.

The traceback goes into the session's own log (an ``error`` record, which replaying a session skips), so
it travels with the conversation it broke; when there is no session yet, or the session cannot be
written (the failure may be the session store's), into ``KIMICODE_HOME/logs/``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.config import Config
from kimicode.security.redact import redact

if TYPE_CHECKING:
    from kimicode.session.store import Session

RECORD_ERROR = "error"


def keep_traceback(config: Config, exc: BaseException, session: Session | None) -> Path | None:
    """Where the traceback of ``exc`` was written (None when nowhere could take it)."""
    text = "".join(traceback.format_exception(exc))
    if session is not None:
        try:
            session.append_record(RECORD_ERROR, kind="internal", error=f"{type(exc).__name__}: {exc}", traceback=text)
            return session.path
        except Exception:  # noqa: BLE001 - the session store may be what failed: the logs folder is the fallback
            pass
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = config.home / "logs" / f"error-{session.id if session else stamp}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(text), encoding="utf-8")
    except OSError:
        return None
    return path


def internal_error_line(config: Config, exc: BaseException, session: Session | None) -> str:
    """The one line an unexpected exception gets; with ``--debug`` its traceback is printed first."""
    if config.debug:
        traceback.print_exception(exc, file=sys.stderr)
    where = keep_traceback(config, exc, session)
    kept = f"the traceback is in {where}" if where else "its traceback could not be saved"
    detail = " ".join(str(exc).split())[:300]
    return f"unexpected error: {type(exc).__name__}: {detail} ({kept}; --debug prints it)"
