"""What keeps the screenshot browser inside the user's boundary.

- Network: every connection goes through the gate (kimicode/vision/gate.py) with the decision ``fetch``
  makes: cloud metadata never, the private network only at an address the policy allowed for this call,
  names only where they resolve to the internet (``localhost`` names to this machine).
- Files: every ``file://`` request (the page, its frames, images, scripts, a navigation) passes a route
  that lets through only files whose real path is inside the workspace, or the page the policy allowed
  itself. Links are followed before the check, so a link in the workspace does not reach out of it.
- Chromium's own sandbox stays on. As root Chromium refuses to use it, so there it is started in a user
  namespace where it is an ordinary user (``unshare --user``), which gives the sandbox back; where neither
  works it runs without one and says so.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from kimicode.security import urls

# Chromium is not root inside the user namespace it is started in as root; the number is arbitrary.
INNER_UID = 1000
# No path around the gate: no QUIC, no WebRTC over UDP, no name lookups of Chromium's own.
GATED_ARGS = [
    "--proxy-bypass-list=<-loopback>",  # loopback too goes through the gate
    "--disable-quic",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--dns-prefetch-disable",
]
NETWORK_SCHEMES = ("http", "https", "ws", "wss")


def gate_args(port: int) -> list[str]:
    return [f"--proxy-server=http://127.0.0.1:{port}", *GATED_ARGS]


_LAUNCHERS: dict[str, str] = {}  # browser program -> its launcher, made once per process


def sandbox_wrapper(executable: str) -> str | None:
    """As root: a launcher that starts ``executable`` as an ordinary user in a user namespace of its own,
    where Chromium's sandbox works; None when not root or ``unshare`` is missing. One per program, reused by
    every launch of the process and removed when it ends (a folder per launch was left in /tmp)."""
    if os.geteuid() != 0:
        return None
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    known = _LAUNCHERS.get(executable)
    if known is not None and os.path.exists(known):
        return known
    folder = Path(tempfile.mkdtemp(prefix="kimicode-chromium-"))
    atexit.register(shutil.rmtree, folder, True)
    launcher = folder / "chromium"
    launcher.write_text(
        "#!/bin/sh\n"
        f"exec {_quote(unshare)} --user --map-user={INNER_UID} --map-group={INNER_UID} -- {_quote(executable)} \"$@\"\n"
    )
    launcher.chmod(0o700)
    _LAUNCHERS[executable] = str(launcher)
    return str(launcher)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


class Boundary:
    """The allowances of the screenshots in flight: which private addresses and which file the policy
    allowed for them. Requests are judged against these."""

    def __init__(self) -> None:
        self._addresses: Counter[str] = Counter()
        self.refused: list[str] = []

    def network_problem(self, target: urls.Target, addresses: tuple[str, ...]) -> str:
        return urls.connect_problem(target, addresses, frozenset(self._addresses))

    def allow_address(self, url: str) -> str:
        """Note the address a screenshot's own URL names (the policy allowed it); returns it for ``release``."""
        try:
            target = urls.parse(url)
        except urls.UrlError:
            return ""
        if not target.literal:
            return ""
        self._addresses[target.host] += 1
        return target.host

    def release(self, address: str) -> None:
        if address:
            self._addresses[address] -= 1
            if self._addresses[address] <= 0:
                del self._addresses[address]


class FileGuard:
    """The route handler of one screenshot: ``file://`` inside ``roots`` (or the page itself) only."""

    def __init__(self, roots: list[Path], page_file: Path | None, refused: list[str]) -> None:
        self.roots = [Path(os.path.realpath(root)) for root in roots]
        self.page_file = Path(os.path.realpath(page_file)) if page_file else None
        self.refused = refused

    def problem(self, url: str) -> str:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in NETWORK_SCHEMES:
            return ""  # the gate judges these
        if scheme != "file":
            return f"{scheme}: requests are not made by screenshots"
        if parts.netloc not in ("", "localhost"):
            return "a file on another machine"
        real = Path(os.path.realpath(unquote(parts.path)))
        if real == self.page_file or any(real.is_relative_to(root) for root in self.roots):
            return ""
        return "a file outside the workspace"

    async def __call__(self, route: Any) -> None:
        url = route.request.url
        why = self.problem(url)
        if why:
            self.refused.append(f"{url}: {why}")
            await route.abort("accessdenied")
        else:
            await route.continue_()
