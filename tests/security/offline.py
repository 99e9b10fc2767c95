"""Policy tests that name a host must not look it up: the answer would come from whatever resolver the
machine has, and a query is a packet leaving it."""

import socket
from typing import NoReturn


def no_name_lookup(*args: object, **kwargs: object) -> NoReturn:
    raise socket.gaierror(socket.EAI_NONAME, "not looked up in this test")
