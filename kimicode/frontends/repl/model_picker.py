"""``/model``: without a name, the endpoint's models (``GET /models``, asked once per endpoint) with their
context windows; with a name, the switch, refused at once for a model the endpoint does not list (an
endpoint without a list gets the name unchecked, with a note)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl
    from kimicode.llm.models import ModelInfo


def window_of(model: ModelInfo) -> int | None:
    """The window the endpoint states, else the one kimicode knows for that model, else None."""
    from kimicode.llm.profiles import profile_for

    if model.context_window:
        return model.context_window
    profile = profile_for(model.id)
    return profile.context_window if profile.known else None


async def _listed(repl: ReplControl) -> list[ModelInfo]:
    from kimicode.llm.models import cached_models

    return await asyncio.to_thread(cached_models, repl.config.base_url, repl.config.api_key)


async def list_models(repl: ReplControl) -> None:
    from kimicode.llm.models import ModelsError

    current = repl.config.model
    repl.renderer.info(f"model: {current} at {repl.config.base_url}")
    try:
        models = await _listed(repl)
    except ModelsError as exc:
        repl.renderer.dim(f"  the endpoint lists no models ({exc}); /model NAME switches all the same")
        return
    if not models:
        repl.renderer.dim("  the endpoint lists no models; /model NAME switches all the same")
        return
    width = max(len(m.id) for m in models)
    for model in sorted(models, key=lambda m: m.id):
        window = window_of(model)
        about = f"{window:,} tokens" if window else "window unknown"
        if window and not model.window_exact:
            about = f"up to {about}"
        marker = "*" if model.id == current else " "
        repl.renderer.listing(f"  {marker} {model.id:<{width}}  {about}", "bold" if marker == "*" else "")
    count = len(models)
    repl.renderer.dim(f"  {count} model{'s' if count != 1 else ''} · switch with /model NAME")


async def choose_model(repl: ReplControl, name: str) -> None:
    from kimicode.llm.models import ModelsError, find_model

    note = ""
    listed: ModelInfo | None = None
    try:
        models = await _listed(repl)
    except ModelsError as exc:
        models = []
        note = f" (not checked: the endpoint lists no models: {exc})"
    if models:
        listed = find_model(models, name)
        if listed is None:
            repl.renderer.error(
                f"{repl.config.base_url} serves no model {name!r}; /model lists the {len(models)} it serves"
            )
            return
        name = listed.id
    await repl.set_model(name)
    if listed is not None and listed.context_window:
        # What the list says about the window holds from the first request on (the client would learn it then).
        repl.agent.client.learn_window(listed.context_window, listed.window_exact)
    repl.renderer.dim(f"model: {name} (context {repl.agent.client.profile.context_window:,} tokens){note}")
