"""Finding Chromium and starting it inside the boundary.

Playwright's own Chromium download is used when present and working; otherwise a system Chromium or
Chrome found on PATH. ``$KIMICODE_CHROMIUM`` names the one browser to use.

Invariants:
- Every launch has the gate as its proxy for every host, loopback included (``boundary.gate_args``),
  and CHROMIUM_ARGS, which keep Chromium's own background traffic down; whatever still goes out is
  judged by the gate like a page's request.
- Each browser is tried with its sandbox first (as root: as an ordinary user in a user namespace) and
  without it only when that fails; the caller learns which way it started.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from kimicode.vision.boundary import gate_args, sandbox_wrapper
from kimicode.vision.errors import VisionError, first_line

__all__ = ["CHROMIUM_ARGS", "NO_CHROMIUM_MESSAGE", "find_chromium", "launch"]

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The on-device model's manifest is fetched from the component updater on demand, which
    # --disable-component-update does not stop; a local manifest (here: none) replaces that request.
    f"--optimization-guide-manifest-override={os.devnull}",
]
SYSTEM_BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
FALLBACK_PATHS = ["/usr/bin/chromium"]
NO_CHROMIUM_MESSAGE = (
    "no Chromium found: install it with `sudo apt-get install chromium` (Debian/Ubuntu) "
    "or `playwright install chromium`"
)


def find_chromium(playwright_executable: str | None = None) -> str | None:
    """The browser to launch: $KIMICODE_CHROMIUM, Playwright's own, then a system Chromium/Chrome."""
    override = os.environ.get("KIMICODE_CHROMIUM")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    if playwright_executable and Path(playwright_executable).is_file():
        return playwright_executable
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    for candidate in FALLBACK_PATHS:
        if Path(candidate).is_file():
            return candidate
    return None


async def launch(chromium: Any, executable: str | None, gate_port: int) -> tuple[Any, bool]:
    """A running browser behind the gate at ``gate_port`` and whether its sandbox is on.

    ``chromium`` is Playwright's browser type; ``executable`` (if given) is the only browser tried.
    """
    candidates: list[str] = []
    if executable:
        candidates.append(executable)
    else:
        own = playwright_executable(chromium)
        if own and not os.environ.get("KIMICODE_CHROMIUM"):
            candidates.append(own)  # tried first; on failure fall through to a system browser
        system = find_chromium()
        if system and system not in candidates:
            candidates.append(system)
    if not candidates:
        raise VisionError(NO_CHROMIUM_MESSAGE)
    failure = ""
    args = [*CHROMIUM_ARGS, *gate_args(gate_port)]
    for candidate in candidates:
        # Sandboxed first (as root: as an ordinary user in a user namespace), then without a sandbox.
        for launcher, sandbox in ((sandbox_wrapper(candidate) or candidate, True), (candidate, False)):
            try:
                browser = await chromium.launch(
                    executable_path=launcher, args=args, headless=True, chromium_sandbox=sandbox
                )
            except Exception as exc:  # noqa: BLE001 - any launch failure means: try the next way
                failure = f"{candidate}: {first_line(exc)}"
                continue
            return browser, sandbox
    raise VisionError(f"Chromium failed to start ({failure}); {NO_CHROMIUM_MESSAGE.split(': ', 1)[1]}")


def playwright_executable(chromium: Any) -> str | None:
    try:
        return str(chromium.executable_path)
    except Exception:  # noqa: BLE001 - no bundled browser registered
        return None
