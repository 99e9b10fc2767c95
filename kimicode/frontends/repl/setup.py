"""First-run setup in the REPL: no API key yet → offer the platforms and the OpenAI-compatible servers
found on this machine (which need no key); for a platform, ask for the key, check it, save it.

The endpoint comes from the user's own choices only (flag, KIMI_BASE_URL, their config.toml, the platform
list), never from the project's config: a key typed here must not reach an endpoint a repository names,
and nothing from the project is written into the user's config.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.config import DEFAULT_BASE_URL, Config, user_endpoint
from kimicode.security.redact import register as register_secret
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.llm.local import LocalServer
    from kimicode.llm.models import ModelInfo

PLATFORMS = (
    ("Moonshot AI (platform.moonshot.ai)", "https://api.moonshot.ai/v1"),
    ("Moonshot AI China (platform.moonshot.cn)", "https://api.moonshot.cn/v1"),
    ("another OpenAI-compatible endpoint", ""),
)
CHECK_TIMEOUT_S = 15


class KeyRejected(Exception):
    pass


def check_key(base_url: str, key: str) -> list[ModelInfo]:
    """GET /models with the key; returns the models the endpoint lists. KeyRejected on 401/403."""
    from kimicode.llm.models import ModelsError, fetch_models

    try:
        return fetch_models(base_url, key, CHECK_TIMEOUT_S)
    except ModelsError as exc:
        if exc.status in (401, 403):
            raise KeyRejected(f"the endpoint rejected the key ({exc.status})") from exc
        raise OSError(str(exc)) from exc


async def needs_key(base_url: str, users_endpoint: str) -> bool:
    """Must the user give a key before the session starts? Not for a server on this machine that the user
    chose, unless it answers 401/403 without one (vLLM and llama.cpp can be started with --api-key)."""
    from kimicode.llm.endpoint import keyless_ok

    if not keyless_ok(base_url, users_endpoint):
        return True
    try:
        await asyncio.to_thread(check_key, base_url, "")
    except KeyRejected:
        return True
    except OSError:
        pass  # not up yet: the first request says so
    return False


async def key_ready(config: Config, ask: object, flag_base_url: str | None, error: Callable[[str], None]) -> bool:
    """Can the session start? Yes with a key, with a server on this machine that needs none, or once the
    guided setup found one; no (after one ``error`` line, or none when the user quit the setup) otherwise."""
    users_endpoint = user_endpoint(config.home, flag=flag_base_url)
    if config.api_key or not await needs_key(config.base_url, users_endpoint):
        return True
    try:
        if await guided_setup(config, ask, flag_base_url):
            return True
    except (EOFError, KeyboardInterrupt):
        return False
    error("no working API key; set KIMI_API_KEY or run kimicode again")
    return False


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
    """Ask for what is missing; True when the run can go on (a key, or a server on this machine that needs
    none). ``ask(message, password)`` is the REPL's line prompt (raises EOFError/KeyboardInterrupt when the
    user gives up); ``flag_base_url`` is --base-url."""
    say = print
    say("No API key yet. Let's set one up (Ctrl-C to quit).")
    base_url = user_endpoint(config.home, flag=flag_base_url)
    if base_url == DEFAULT_BASE_URL and not os.environ.get("KIMI_BASE_URL"):
        from kimicode.llm.local import discover

        local = [server for server in await discover() if server.models]
        for number, (label, _) in enumerate(PLATFORMS, 1):
            say(f"  {number}) {label}")
        for number, server in enumerate(local, len(PLATFORMS) + 1):
            say(f"  {number}) {server.describe()} — on this machine, no key needed")
        choices = len(PLATFORMS) + len(local)
        choice = (await ask("Platform [1]: ", False)).strip() or "1"  # type: ignore[operator]
        index = int(choice) - 1 if choice.isdigit() and 1 <= int(choice) <= choices else 0
        if index >= len(PLATFORMS):
            return await _use_local(config, local[index - len(PLATFORMS)], ask)
        base_url = PLATFORMS[index][1]
        while not base_url:
            base_url = (await ask("Base URL (e.g. http://localhost:8000/v1): ", False)).strip()  # type: ignore[operator]
    for _attempt in range(3):
        key = (await ask("API key: ", True)).strip()  # type: ignore[operator]
        if not key:
            continue
        models: list[ModelInfo] = []
        try:
            models = await asyncio.to_thread(check_key, base_url, key)
        except KeyRejected as exc:
            say(f"✗ {exc}; try again")
            continue
        except OSError as exc:
            say(f"! could not check the key ({exc}); saving it anyway")
        else:
            say(f"✓ key works ({plural(len(models), 'model')} available)")
        settings = {"api_key": key}
        if base_url != DEFAULT_BASE_URL:
            settings["base_url"] = base_url
        if base_url not in {url for _label, url in PLATFORMS} and models:
            settings["model"] = config.model = await _ask_model(config.model, models, ask)
        path = config.home / "config.toml"
        save_settings(path, settings)
        say(f"saved to {path} (readable only by you)")
        config.api_key, config.base_url = key, base_url.rstrip("/")
        register_secret(key)
        return True
    return False


async def _ask_model(current: str, models: list[ModelInfo], ask: object) -> str:
    """A custom endpoint: which of its models to use (the configured one when it is the only one listed)."""
    from kimicode.frontends.repl.model_picker import window_of

    ids = [model.id for model in models]
    if ids == [current]:
        return current
    default = ids.index(current) + 1 if current in ids else 1
    for number, listed in enumerate(models, 1):
        window = window_of(listed)
        print(f"  {number}) {listed.id}" + (f" ({window:,} tokens)" if window else ""))
    choice = (await ask(f"Model [{default}]: ", False)).strip() or str(default)  # type: ignore[operator]
    return ids[int(choice) - 1] if choice.isdigit() and 1 <= int(choice) <= len(ids) else ids[default - 1]


async def _use_local(config: Config, server: LocalServer, ask: object) -> bool:
    """A local server picked from the list: choose one of its models, save the endpoint (no key)."""
    model = server.models[0].id
    if len(server.models) > 1:
        for number, listed in enumerate(server.models, 1):
            window = f" ({listed.context_window:,} tokens)" if listed.context_window else ""
            print(f"  {number}) {listed.id}{window}")
        choice = (await ask("Model [1]: ", False)).strip() or "1"  # type: ignore[operator]
        if choice.isdigit() and 1 <= int(choice) <= len(server.models):
            model = server.models[int(choice) - 1].id
    path = config.home / "config.toml"
    save_settings(path, {"base_url": server.base_url, "model": model})
    print(f"✓ using {model} on {server.name} at {server.base_url}; saved to {path}")
    config.base_url, config.model, config.api_key = server.base_url, model, ""
    return True
