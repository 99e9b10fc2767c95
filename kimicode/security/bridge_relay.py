"""Inside the sandbox: run a background command and relay connections from the host to its loopback ports.

A sandboxed background task lives in a network namespace of its own (no network), so a server it starts on
127.0.0.1 cannot be reached from the host, where the browser of the ``screenshot`` tool runs. This script is
started by bubblewrap in place of the command: it starts the command, listens on a Unix socket in the
sandbox's private temporary folder (a path both sides see; path-named Unix sockets do not belong to a
network namespace), and for each connection reads one line naming a port, connects to that port on the
sandbox's loopback, answers ``ok`` (or ``error ...``) and copies bytes both ways. The host side
(kimicode.security.portbridge) decides which ports to offer: those the task's own processes listen on.

It uses the standard library only and is run with ``python -I -S``, so nothing from the workspace or the
environment is imported. It exits with the command's exit status; the sandbox's PID namespace then ends
everything the command left behind.

    python -I -S bridge_relay.py SOCKET -- COMMAND [ARGS...]
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def _connect_local(port: int) -> socket.socket:
    last: OSError = OSError("no loopback address")
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect((address, port))
            sock.settimeout(None)
            return sock
        except OSError as exc:
            last = exc
            sock.close()
    raise last


def _serve_one(client: socket.socket) -> None:
    try:
        line = b""
        while not line.endswith(b"\n") and len(line) < 16:
            piece = client.recv(1)
            if not piece:
                client.close()
                return
            line += piece
        port = int(line.strip())
        if not 0 < port < 65536:
            raise ValueError(port)
        upstream = _connect_local(port)
    except (OSError, ValueError) as exc:
        try:
            client.sendall(f"error {exc}\n".encode())
        except OSError:
            pass
        client.close()
        return
    client.sendall(b"ok\n")
    threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
    _pipe(client, upstream)


def _accept(server: socket.socket) -> None:
    while True:
        try:
            client, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=_serve_one, args=(client,), daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: bridge_relay.py SOCKET -- COMMAND [ARGS...]\n")
        return 2
    path, command = argv[0], argv[2:]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is for this user only
    try:
        server.bind(path)
    finally:
        os.umask(old_umask)
    server.listen(64)
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    # A stop request (SIGTERM to the sandbox) reaches this process first: pass it on to the command.
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    threading.Thread(target=_accept, args=(server,), daemon=True).start()
    code = child.wait()
    server.close()
    try:
        os.unlink(path)
    except OSError:
        pass
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
