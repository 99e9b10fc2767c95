"""A TCP listener on loopback for the tests' hand-written HTTP servers: each connection it accepts is served
in a thread of its own, until the listener is closed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class Listener:
    def __init__(self, serve: Callable[[socket.socket], None], host: str = "127.0.0.1") -> None:
        self._sock = socket.create_server((host, 0))
        self.port: int = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, args=(serve,), daemon=True).start()

    def close(self) -> None:
        self._sock.close()

    def _accept(self, serve: Callable[[socket.socket], None]) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
