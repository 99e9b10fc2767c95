"""The log file of a front end that runs as a service (`kimicode acp`, `kimicode serve`): everything logged goes to
KIMICODE_HOME/logs/NAME, redacted, and nowhere else (stdout and stderr belong to the protocol or the user)."""

from __future__ import annotations

import logging
from pathlib import Path

# One line per request from these is noise without --debug.
CHATTY_LOGGERS = ("httpx", "httpx2", "httpcore", "mcp")


def log_to_file(home: Path, name: str, debug: bool, chatty: tuple[str, ...] = ()) -> None:
    """Send the root logger to ``home``/logs/``name``; ``chatty``: more loggers kept quiet without ``debug``."""
    from kimicode.security.redact import redact

    class Redacting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / name, encoding="utf-8")
    handler.setFormatter(Redacting("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for logger in (*CHATTY_LOGGERS, *chatty):
        logging.getLogger(logger).setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.captureWarnings(True)  # a library's warning goes to the log, not to a stream a client reads
