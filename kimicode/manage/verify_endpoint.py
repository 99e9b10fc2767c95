"""`kimicode verify-endpoint`: does this endpoint serve the model the way kimicode needs? A table of
checks with timings (kimicode/llm/verify.py has the battery); exit 0 only if every required one passes."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Annotated, Optional

import typer

from kimicode.manage.common import fail as _fail


def register_verify_endpoint(app: typer.Typer) -> None:
    @app.command("verify-endpoint")
    def verify_endpoint(
        base_url: Annotated[Optional[str], typer.Option("--base-url", help="Endpoint to check (default: the configured one).")] = None,
        model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to check (default: the configured one).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help='Print {"checks": [...], "ok": bool}.')] = False,
        skip: Annotated[Optional[list[str]], typer.Option("--skip", help="Leave out a check by name (repeatable), e.g. long_context.")] = None,
    ) -> None:
        """Check streaming, tool calls and their ids, parallel calls, reasoning_content with thinking on and
        off, tool-call JSON, image input, long and overflowing context, sampling, usage and error shapes."""
        from kimicode.config import ConfigError, load_config, user_endpoint
        from kimicode.llm.endpoint import keyless_ok
        from kimicode.llm.reach import base_url_line, base_url_problem
        from kimicode.llm.setup import model_setup
        from kimicode.llm.verify import Battery, Check, verdict

        try:
            config = load_config(flags={"base_url": base_url, "model": model})
        except ConfigError as exc:
            raise _fail(str(exc)) from exc
        problem = base_url_problem(config.base_url)
        if problem:
            raise _fail(base_url_line(config.base_url, problem, bool(base_url)))
        if not config.api_key and not keyless_ok(config.base_url, user_endpoint(config.home, flag=base_url)):
            raise _fail("no API key: set KIMI_API_KEY (a server on this machine needs none: give --base-url)")
        setup = model_setup(config)
        for notice in setup.notices():
            typer.echo(f"kimicode: {notice}", err=True)
        battery = Battery(config, setup)
        names = {name for name, _, _ in battery.plan()}
        unknown = sorted(set(skip or []) - names)
        if unknown:
            raise _fail(f"no check named {', '.join(unknown)}; the checks: {', '.join(sorted(names))}")
        battery.skip = set(skip or [])
        if not as_json:
            typer.echo(f"verifying {config.model} at {config.base_url}")
            typer.echo(f"  {'check':<22}{'result':<8}{'required':<10}{'ms':>7}  detail")

        def show(check: Check) -> None:
            if as_json:
                return
            result = "pass" if check.ok else "FAIL"
            required = "yes" if check.required else "no"
            typer.echo(f"  {check.name:<22}{result:<8}{required:<10}{check.ms:>7}  {check.detail}")
            sys.stdout.flush()

        started = time.monotonic()
        checks = asyncio.run(battery.run(show))
        ok = verdict(checks)
        if as_json:
            typer.echo(json.dumps({"checks": [c.to_json() for c in checks], "ok": ok}, ensure_ascii=False))
        else:
            failed = [c.name for c in checks if c.required and not c.ok]
            passed = sum(1 for c in checks if c.ok)
            for line in battery.learned:
                typer.echo(f"  learned: {line} (kept in {setup.store.path})")
            summary = "every required check passed" if ok else f"required checks failed: {', '.join(failed)}"
            typer.echo(f"{passed}/{len(checks)} checks passed; {summary} ({time.monotonic() - started:.1f} s)")
        for notice in setup.notices():
            typer.echo(f"kimicode: {notice}", err=True)
        raise typer.Exit(0 if ok else 1)
