"""`kimicode models`: the models the current endpoint serves (`--local`: those of the servers on this
machine), with each one's context window where the server reports it."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Optional

import typer

from kimicode.manage.common import fail as _fail


def register_models(app: typer.Typer) -> None:
    @app.command("models")
    def models(
        local: Annotated[bool, typer.Option("--local", help="List the models of the OpenAI-compatible servers on this machine.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        base_url: Annotated[Optional[str], typer.Option("--base-url", help="Endpoint to ask (default: the configured one).")] = None,
    ) -> None:
        """List the endpoint's models (id, context window, owner); the current model is marked *."""
        from kimicode.config import ConfigError, load_config
        from kimicode.llm.models import ModelsError, fetch_models

        try:
            config = load_config(flags={"base_url": base_url})
        except ConfigError as exc:
            raise _fail(str(exc)) from exc
        rows: list[dict[str, Any]] = []
        if local:
            from kimicode.llm.local import candidate_ports, discover

            servers = asyncio.run(discover())
            if not servers and not as_json:
                ports = ", ".join(str(port) for _, port in candidate_ports())
                typer.echo(f"no OpenAI-compatible server answered on this machine (ports {ports})")
                return
            for server in servers:
                rows += [{"base_url": server.base_url, "server": server.name, **m.to_json()} for m in server.models]
                if not server.models:
                    rows.append({"base_url": server.base_url, "server": server.name, "id": None})
        else:
            try:
                listed = fetch_models(config.base_url, config.api_key)
            except ModelsError as exc:
                hint = "; check KIMI_API_KEY" if exc.status in (401, 403) else ""
                raise _fail(f"{exc}{hint}", 1) from exc
            _remember(config, listed)
            rows = [{"base_url": config.base_url, "server": "", **m.to_json()} for m in listed]
        if as_json:
            typer.echo(json.dumps({"models": rows, "current": config.model if not local else None}, ensure_ascii=False))
            return
        _print_table(rows, None if local else config.model)


def _remember(config: Any, listed: list[Any]) -> None:
    """What the list says about the endpoint (its server, the windows) is kept for the next run."""
    from kimicode.llm.endpoint import EndpointStore
    from kimicode.llm.models import teach

    store = EndpointStore(config.home)
    endpoint = store.load(config.base_url)
    teach(endpoint, listed)
    store.save_quietly(endpoint)
    if store.problem:
        typer.echo(f"kimicode: {store.problem}", err=True)


def _print_table(rows: list[dict[str, Any]], current: str | None) -> None:
    if not rows:
        typer.echo("the endpoint lists no models")
        return
    width = max(len(str(row["id"] or "(no model loaded)")) for row in rows)
    where = ""
    for row in rows:
        if row["base_url"] != where and (current is None):
            where = row["base_url"]
            typer.echo(f"{row['server']} at {where}")
        name = str(row["id"] or "(no model loaded)")
        mark = "*" if current and name == current else " "
        window = f"{row['context_window']:,} tokens" if row.get("context_window") else "window not reported"
        owner = f"  {row['owned_by']}" if row.get("owned_by") else ""
        typer.echo(f"{mark} {name:<{width}}  {window}{owner}")
