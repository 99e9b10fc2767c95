"""First-run setup in the REPL: no API key yet → ask for the platform and key, check it, save it.

The endpoint comes from the user's own choices only (flag, KIMI_BASE_URL, their config.toml, the platform
list), never from the project's config: a key typed here must not reach an endpoint a repository names,
and nothing from the project is written into the user's config.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from kimicode.config import DEFAULT_BASE_URL, Config, user_endpoint
from kimicode.security.redact import register as register_secret

PLATFORMS = (
    ("Moonshot AI (platform.moonshot.ai)", "https://api.moonshot.ai/v1"),
    ("Moonshot AI China (platform.moonshot.cn)", "https://api.moonshot.cn/v1"),
    ("another OpenAI-compatible endpoint", ""),
)
CHECK_TIMEOUT_S = 15


class KeyRejected(Exception):
    pass


def check_key(base_url: str, key: str) -> int:
    """GET /models with the key; returns how many models the endpoint lists. KeyRejected on 401/403."""
    request = urllib.request.Request(f"{base_url.rstrip('/')}/models", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=CHECK_TIMEOUT_S) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise KeyRejected(f"the endpoint rejected the key ({exc.code})") from exc
        raise OSError(f"{base_url} answered {exc.code}") from exc
    data = body.get("data") if isinstance(body, dict) else None
    return len(data) if isinstance(data, list) else 0


def save_settings(path: Path, settings: dict[str, str]) -> None:
    """Set top-level string keys in config.toml, keeping its other lines; the file is private (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    # Top-level keys sit before the first [table]; ours go there too.
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    head, tail = lines[:first_table], lines[first_table:]
    pattern = re.compile(rf"^\s*({'|'.join(map(re.escape, settings))})\s*=")
    head = [line for line in head if not pattern.match(line)]
    head += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    text = "\n".join(head + ([""] if tail else []) + tail) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


async def guided_setup(config: Config, ask: object, flag_base_url: str | None = None) -> bool:
    """Ask for what is missing; True when the config now has a key. ``ask(message, password)`` is the REPL's
    line prompt (raises EOFError/KeyboardInterrupt when the user gives up); ``flag_base_url`` is --base-url."""
    say = print
    say("No API key yet. Let's set one up (Ctrl-C to quit).")
    base_url = user_endpoint(config.home, flag=flag_base_url)
    if base_url == DEFAULT_BASE_URL and not os.environ.get("KIMI_BASE_URL"):
        for number, (label, _) in enumerate(PLATFORMS, 1):
            say(f"  {number}) {label}")
        choice = (await ask("Platform [1]: ", False)).strip() or "1"  # type: ignore[operator]
        index = int(choice) - 1 if choice.isdigit() and 1 <= int(choice) <= len(PLATFORMS) else 0
        base_url = PLATFORMS[index][1]
        while not base_url:
            base_url = (await ask("Base URL (e.g. http://localhost:8000/v1): ", False)).strip()  # type: ignore[operator]
    for _attempt in range(3):
        key = (await ask("API key: ", True)).strip()  # type: ignore[operator]
        if not key:
            continue
        try:
            count = await asyncio.to_thread(check_key, base_url, key)
        except KeyRejected as exc:
            say(f"✗ {exc}; try again")
            continue
        except OSError as exc:
            say(f"! could not check the key ({exc}); saving it anyway")
        else:
            say(f"✓ key works ({count} models available)")
        settings = {"api_key": key}
        if base_url != DEFAULT_BASE_URL:
            settings["base_url"] = base_url
        path = config.home / "config.toml"
        save_settings(path, settings)
        say(f"saved to {path} (readable only by you)")
        config.api_key, config.base_url = key, base_url.rstrip("/")
        register_secret(key)
        return True
    return False
