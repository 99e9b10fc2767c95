"""The session sandbox's supervisor waits for a request with a timeout on its channel (so that it waits in
poll(), which the host's reading of a reply does not wake): running into that timeout only starts the wait
again. The supervisor's own receive(), on a socket pair, with a timeout of a millisecond."""

from __future__ import annotations

import os
import socket

from kimicode.security.supervisor import HEADER, receive

BODY = b"/\x001\x00true"  # cwd, argument count, argv: a request's body


class Idle(socket.socket):
    """The supervisor's end of the channel: the host sends the request once its wait timed out twice."""

    def __init__(self, fileno: int, host: socket.socket, out: int) -> None:
        super().__init__(fileno=fileno)
        self.host, self.out = host, out
        self.timeouts = 0

    def recvmsg(self, *args: int) -> tuple[bytes, list[tuple[int, int, bytes]], int, object]:
        try:
            return super().recvmsg(*args)
        except TimeoutError:
            self.timeouts += 1
            if self.timeouts == 2:
                socket.send_fds(self.host, [HEADER.pack(len(BODY)) + BODY], [self.out])
            raise


def test_a_request_after_the_wait_timed_out_is_still_received() -> None:
    host, theirs = socket.socketpair()
    out_read, out_write = os.pipe()
    channel = Idle(theirs.detach(), host, out_write)
    channel.settimeout(0.001)
    try:
        request = receive(channel)
        assert channel.timeouts == 2
        assert request is not None and request[1] == BODY
        os.close(request[0])  # (the output pipe's writing end, as passed)
        host.close()
        assert receive(channel) is None  # the host gone: the end, not another wait
    finally:
        channel.close()
        host.close()
        os.close(out_read)
        os.close(out_write)


class Halting(socket.socket):
    """The supervisor's end of the channel: the request's body comes in two parts, the second once the wait
    for it has timed out."""

    def __init__(self, fileno: int, host: socket.socket) -> None:
        super().__init__(fileno=fileno)
        self.host = host
        self.timeouts = 0

    def recv(self, *args: int) -> bytes:
        try:
            return super().recv(*args)
        except TimeoutError:
            self.timeouts += 1
            if self.timeouts == 1:
                self.host.sendall(BODY[4:])
            raise


def test_the_rest_of_a_request_after_the_wait_timed_out_is_still_received() -> None:
    host, theirs = socket.socketpair()
    out_read, out_write = os.pipe()
    channel = Halting(theirs.detach(), host)
    channel.settimeout(0.001)
    try:
        socket.send_fds(host, [HEADER.pack(len(BODY)) + BODY[:4]], [out_write])
        request = receive(channel)
        assert channel.timeouts == 1
        assert request is not None and request[1] == BODY
        os.close(request[0])
    finally:
        channel.close()
        host.close()
        os.close(out_read)
        os.close(out_write)
