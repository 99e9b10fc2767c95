"""`kimicode serve` / `kimicode web`: bind, say where and with which token, serve until stopped.

Invariants:
- The address is bound before anything is printed, so the URL printed is one that answers (``--port 0``
  picks a free port and prints it).
- The token is printed once and written to ``KIMICODE_HOME/serve.token`` (0600) for local clients.
- A non-loopback address is served only when ``--host`` named it, and a warning says who can now reach it.
- On exit every session is closed: turns cancelled, their commands killed, session logs closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from kimicode.config import kimicode_home
from kimicode.frontends.common.logfile import log_to_file
from kimicode.frontends.web.auth import Gate, is_loopback, write_token

log = logging.getLogger("kimicode.web")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5494


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _warm() -> None:
    """The model client's SDK (about a second to import) loads while the user opens the page."""
    try:
        from kimicode.llm.client import load_sdk

        load_sdk()
    except Exception:  # noqa: BLE001 - a failure shows at the first request instead
        log.info("could not preload the model client", exc_info=True)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_serve(flags: dict[str, Any], host: str, port: int, workspaces: list[Path], open_browser: bool = False) -> int:
    home = kimicode_home()
    try:
        sock = _bind(host, port)
    except OSError as exc:
        sys.stderr.write(f"kimicode: cannot listen on {host}:{port}: {exc.strerror or exc}\n")
        return 2
    port = sock.getsockname()[1]
    log_to_file(home, "serve.log", bool(flags.get("debug")), chatty=("uvicorn.access",))
    gate = Gate(host, port)
    token_path = write_token(home, gate.token)
    say(f"kimicode serve: listening on {gate.base_url} (workspaces: {', '.join(map(str, workspaces))})")
    say(f"kimicode serve: token {gate.token} (also in {token_path}, for local clients)")
    say(f"kimicode serve: open {gate.login_url()} to log in from a browser (the link works once)")
    if not is_loopback(host):
        sys.stderr.write(
            f"kimicode: warning: serving on {host}, not loopback: anyone who can reach this address and has the token "
            "can run commands in these workspaces as you\n"
        )
        sys.stderr.flush()
    warmer = threading.Thread(target=_warm, name="warm-imports", daemon=True)
    warmer.start()
    if open_browser:
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(gate.login_url(),), daemon=True).start()
    return _serve(gate, flags, workspaces, sock)


def _serve(gate: Gate, flags: dict[str, Any], workspaces: list[Path], sock: socket.socket) -> int:
    import uvicorn

    from kimicode.frontends.web.hub import Hub
    from kimicode.frontends.web.routes import build_app
    from kimicode.security.orphans import adopt_orphans, end_orphans

    adopt_orphans()  # what an unsandboxed command leaves running ends with the server
    hub = Hub(flags, workspaces)
    app = gate.wrap(build_app(hub))
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5,
        server_header=False, date_header=False,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # Event streams never end by themselves: ended now, the graceful shutdown need not wait them out.
            with contextlib.suppress(RuntimeError):  # no loop running: nothing is streaming either
                asyncio.get_running_loop().call_soon_threadsafe(hub.end_streams)
            super().handle_exit(sig, frame)

    server = Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        return 130
    finally:
        end_orphans()
        sock.close()
    return 0
