"""The host side of the sandbox's port bridge, and which loopback ports a task's processes listen on.

Sandboxed commands have no network: bubblewrap gives each one a network namespace of its own. A background
task's server is still useful to the host — the ``screenshot`` tool's browser runs there — so for background
tasks (only) the sandbox bridges ports: the task runs under ``bridge_relay.py`` inside the sandbox, and for
every TCP port the task's own processes listen on (on loopback or on all addresses) the host listens on the
same port of 127.0.0.1 and passes each connection through the relay's Unix socket to the sandbox's loopback.
Nothing else changes: the task still cannot open a connection to anything outside its sandbox.

Listening sockets are found in ``/proc``: the socket inodes among the task's processes' open files, matched
with the LISTEN entries of ``/proc/<pid>/net/tcp{,6}``, which show the network namespace of that process.
The same code tells an unsandboxed task's ports, which need no bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import sys
from collections.abc import Iterable
from pathlib import Path

RELAY_SCRIPT = Path(__file__).with_name("bridge_relay.py")
_LISTEN = "0A"
# Local addresses a host client could mean by "localhost": loopback and "every address".
_LOOPBACK_OR_ANY = {
    "0100007F",
    "00000000",
    "00000000000000000000000001000000",  # ::1
    "00000000000000000000000000000000",  # ::
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
}
COPY_CHUNK = 64 * 1024


def relay_argv(socket_path: Path, argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` under the relay (stdlib only: ``-I -S``)."""
    return [sys.executable, "-I", "-S", str(RELAY_SCRIPT), str(socket_path), "--", *argv]


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant of it, from /proc (Linux); [] elsewhere or when it is gone."""
    from kimicode.security.orphans import process_table

    table = process_table()
    if root not in table:
        return []
    below: dict[int, list[int]] = {}
    for pid, (ppid, state) in table.items():
        if state != "Z":
            below.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(below.get(pid, []))
    return tree


def listening_ports(pids: Iterable[int]) -> list[int]:
    """TCP ports on loopback or on every address that a socket held by one of ``pids`` listens on."""
    owners: dict[int, int] = {}  # socket inode -> a pid holding it
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{name}")
            except OSError:
                continue
            if link.startswith("socket:["):
                owners.setdefault(int(link[8:-1]), pid)
    if not owners:
        return []
    ports: set[int] = set()
    for pid in sorted(set(owners.values())):  # each namespace seen once is enough, but pids are few
        for table in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                    lines = f.readlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 10 or fields[3] != _LISTEN or int(fields[9]) not in owners:
                    continue
                address, _, port = fields[1].partition(":")
                if address in _LOOPBACK_OR_ANY:
                    ports.add(int(port, 16))
    return sorted(ports)


class PortBridge:
    """For each port offered, a listener on the host's 127.0.0.1 that relays into the sandbox."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._servers: dict[int, asyncio.Server] = {}
        self.unavailable: dict[int, str] = {}  # port -> why it could not be bridged

    @property
    def ports(self) -> list[int]:
        return sorted(self._servers)

    async def offer(self, ports: Iterable[int]) -> list[int]:
        """Bridge the ports listened on now; stop bridging those no longer listened on. Returns new ones."""
        wanted = set(ports)
        for port in [p for p in self._servers if p not in wanted]:
            self._servers.pop(port).close()
        added: list[int] = []
        for port in sorted(wanted):
            if port in self._servers or port in self.unavailable:
                continue
            try:
                self._servers[port] = await asyncio.start_server(
                    functools.partial(self._relay, port), "127.0.0.1", port
                )
            except OSError as exc:
                self.unavailable[port] = "already in use on this machine" if exc.errno == errno.EADDRINUSE else str(exc.strerror or exc)
                continue
            added.append(port)
        return added

    async def _relay(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        inner: asyncio.StreamWriter | None = None
        try:
            inner_reader, inner = await asyncio.open_unix_connection(str(self.socket_path))
            inner.write(f"{port}\n".encode())
            await inner.drain()
            if await inner_reader.readline() != b"ok\n":
                return
            await asyncio.gather(_copy(reader, inner), _copy(inner_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for stream in (writer, inner):
                if stream is not None:
                    with contextlib.suppress(Exception):
                        stream.close()

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()


async def _copy(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await source.read(COPY_CHUNK)
            if not data:
                break
            target.write(data)
            await target.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if target.can_write_eof():
                target.write_eof()
