"""Which of the gate's refusals a screenshot reports as its page's: those its own context asked for.

The refusals come from the real gate (the metadata address is refused before any connection, so nothing
leaves the machine); the context's requests are given as Playwright reports their URLs.
"""

from __future__ import annotations

import asyncio

from kimicode.vision.boundary import Boundary
from kimicode.vision.gate import Gate, Refusal
from kimicode.vision.page_report import MAX_PAGE_ERRORS, PageRequests, compose

PLAIN = b"GET http://169.254.169.254/latest/meta-data/?a=1 HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"
TUNNEL = b"CONNECT 169.254.169.254:443 HTTP/1.1\r\nHost: 169.254.169.254:443\r\n\r\n"
OTHER_TUNNEL = b"CONNECT 169.254.169.254:8443 HTTP/1.1\r\nHost: 169.254.169.254:8443\r\n\r\n"


def refusals(*requests: bytes) -> list[Refusal]:
    async def ask() -> list[Refusal]:
        gate = Gate(Boundary().network_problem)
        heard: list[Refusal] = []
        gate.listeners.add(heard.append)
        await gate.start()
        try:
            for request in requests:
                reader, writer = await asyncio.open_connection("127.0.0.1", gate.port)
                writer.write(request)
                await writer.drain()
                assert (await reader.read()).startswith(b"HTTP/1.1 403")
                writer.close()
        finally:
            await gate.close()
        return heard

    return asyncio.run(ask())


def test_a_plain_request_is_the_pages_only_at_its_own_url() -> None:
    [plain] = refusals(PLAIN)
    page = PageRequests()
    page.add("http://169.254.169.254/latest/meta-data/?a=1#section")  # the fragment never reaches a proxy
    other = PageRequests()
    other.add("http://169.254.169.254/somewhere-else")
    other.add("https://169.254.169.254/latest/meta-data/?a=1")  # that one would arrive as a tunnel
    assert page.made(plain) and not other.made(plain)


def test_a_tunnel_is_the_pages_when_it_opened_a_secure_or_websocket_connection_there() -> None:
    tunnel, other_port = refusals(TUNNEL, OTHER_TUNNEL)
    for url in ("https://169.254.169.254/x", "wss://169.254.169.254:443/socket"):
        page = PageRequests()
        page.add(url)
        assert page.made(tunnel) and not page.made(other_port), url
    websocket = PageRequests()
    websocket.add("ws://169.254.169.254:8443/live")  # through a proxy, ws:// is a tunnel too
    assert websocket.made(other_port)
    plain_only = PageRequests()
    plain_only.add("http://169.254.169.254:443/")
    assert not plain_only.made(tunnel)


def test_the_report_lists_files_then_the_pages_refusals_then_what_it_said_within_the_limit() -> None:
    plain, tunnel = refusals(PLAIN, TUNNEL)
    page = PageRequests()
    page.add("https://169.254.169.254/")
    lines = compose(["file:///etc/passwd: a file outside the workspace"], [plain, tunnel], page,
                    [f"console error: {n}" for n in range(20)])
    assert lines[:2] == ["refused file:///etc/passwd: a file outside the workspace", f"refused {tunnel}"]
    assert lines[2] == "console error: 0" and len(lines) == MAX_PAGE_ERRORS
    assert not any("meta-data" in line for line in lines)
