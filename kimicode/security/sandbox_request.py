"""A command's request to a session sandbox's supervisor (sandbox_session.py, supervisor.py): the bytes
that say where and what to run with which environment, and their sending with the output's descriptor."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from kimicode.security.bwrap_argv import BwrapSpec, sandbox_env
from kimicode.security.sandbox_launch import Instance
from kimicode.security.supervisor import HEADER

# The last environment encoded for a request: (the variables the sandbox sets, a copy of the command's
# environment, its encoding). A session's commands get the same environment step after step; it is
# encoded again only when it differs (compared by value: a dict changed in place is seen too).
_last_env: tuple[dict[str, str], dict[str, str], bytes] | None = None


def _env_part(spec: BwrapSpec, env: Mapping[str, str]) -> bytes:
    global _last_env
    set_env, unset = sandbox_env(spec)
    last = _last_env
    if last is not None and last[0] == set_env and last[1] == env:
        return last[2]
    full = {k: v for k, v in env.items() if k not in unset} | set_env
    items = [os.fsencode(f"{k}={v}") for k, v in full.items()]
    if any(b"\0" in item for item in items):
        raise ValueError("embedded null byte")
    part = b"\0".join(items)
    _last_env = (set_env, dict(env), part)
    return part


def request_body(spec: BwrapSpec, argv: list[str], env: Mapping[str, str]) -> bytes:
    items = [os.fsencode(spec.cwd), str(len(argv)).encode(), *map(os.fsencode, argv)]
    if any(b"\0" in item for item in items):
        raise ValueError("embedded null byte")
    return b"\0".join([*items, _env_part(spec, env)])  # (an empty environment: one empty item, skipped)


async def send(instance: Instance, body: bytes, write_fd: int) -> bool:
    # Header, descriptor and body in one message where the buffer takes it (it does but for a huge
    # environment): one system call and one wake-up of the supervisor, not two.
    data = HEADER.pack(len(body)) + body
    try:
        sent = socket.send_fds(instance.channel, [data], [write_fd])
        if sent < len(data):
            await asyncio.get_running_loop().sock_sendall(instance.channel, memoryview(data)[sent:])
    except OSError:
        return False
    return True
