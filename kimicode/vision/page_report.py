"""What a screenshot says the page reported: refused requests, script errors and failed loads.

Invariants:
- A connection the gate refused is reported only when the page's own browser context asked for it. The
  gate is shared by every context of the browser and by Chromium's own background services (an updater,
  an account check); their requests stay refused, but they are not the page's problem.
- Requests are matched as the gate sees them: a plain http request by its URL (the gate gets it whole),
  an https or WebSocket connection by host and port (the gate sees only a CONNECT to them).
- The context records its requests from its route (every first hop, held until the route lets it go, so
  before the gate can see it), its "request" event (redirect hops too, which the route never sees) and
  each page's "websocket" event (which neither sees).
- At most MAX_PAGE_ERRORS lines, refusals first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kimicode.security import urls
from kimicode.vision.gate import Refusal

MAX_PAGE_ERRORS = 10
_SCHEMES = ("http", "https", "ws", "wss")


class PageRequests:
    """The network requests one browser context made, keyed the way the gate sees them."""

    def __init__(self) -> None:
        self._plain: set[str] = set()  # http URLs (without fragment), or text that was no URL
        self._tunnels: set[tuple[str, int]] = set()  # (host, port) of https and WebSocket connections

    def add(self, url: str) -> None:
        try:
            target = urls.parse(url, _SCHEMES)
        except urls.UrlError:
            self._plain.add(url)
            return
        if target.scheme == "http":
            self._plain.add(target.url.split("#", 1)[0])
        else:  # Chromium opens https and WebSockets (ws too) through a proxy with CONNECT
            self._tunnels.add((target.host, target.port))

    def made(self, refusal: Refusal) -> bool:
        if refusal.tunnel:
            return refusal.target is not None and (refusal.target.host, refusal.target.port) in self._tunnels
        return refusal.shown in self._plain

    def watch(self, context: Any) -> None:
        context.on("request", lambda request: self.add(request.url))
        context.on("page", self.watch_page)

    def watch_page(self, page: Any) -> None:
        page.on("websocket", lambda socket: self.add(socket.url))

    def routed(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """``handler`` as a route that first notes the request."""

        async def route(route: Any) -> None:
            self.add(route.request.url)
            await handler(route)

        return route


def compose(file_refusals: list[str], gate_refusals: list[Refusal], requests: PageRequests,
            errors: list[str]) -> list[str]:
    """The report's lines: files refused, connections refused for the page, then what the page said."""
    refused = [*file_refusals, *(str(refusal) for refusal in gate_refusals if requests.made(refusal))]
    lines = [f"refused {line}" for line in refused[:MAX_PAGE_ERRORS]]
    return lines + errors[: MAX_PAGE_ERRORS - len(lines)]


def watch_errors(page: Any) -> list[str]:
    """Collect what usually explains a blank or broken page: script errors and resources that failed."""
    errors: list[str] = []

    def add(text: str) -> None:
        if len(errors) < MAX_PAGE_ERRORS:
            errors.append(" ".join(text.split())[:300])

    def console(message: Any) -> None:
        # "Failed to load resource" repeats what the request lines below say, without the URL.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            add(f"console error: {message.text}")

    page.on("pageerror", lambda error: add(f"uncaught error: {error}"))
    page.on("console", console)
    page.on("requestfailed", lambda request: add(f"failed to load {request.url}: {request.failure or 'error'}"))
    # The document's own status is noted separately; this catches scripts, styles, images and API calls.
    page.on(
        "response",
        lambda response: add(f"HTTP {response.status} for {response.url}")
        if response.status >= 400 and response.request.resource_type != "document"
        else None,
    )
    return errors
