"""`kimicode batch TASKS.jsonl`: run many tasks, each in its own checkout, locally or on Ray (DESIGN.md B.12).

Exit codes: 0 every task ran (failed tasks are results too); 1 the batch stopped early (budget); 2 usage or
configuration error; 130 interrupted (rerun the same command to finish).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kimicode.manage.common import fail as _fail

EXIT_OK, EXIT_STOPPED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_WORKERS = 4


def register_batch(app: typer.Typer) -> None:
    @app.command("batch")
    def batch(
        tasks: Annotated[Optional[Path], typer.Argument(help="TASKS.jsonl: one task per line.")] = None,
        workers: Annotated[Optional[int], typer.Option("--workers", "-j", help="Tasks running at once (default 4; on Ray: the cluster's CPUs / --num-cpus).")] = None,
        ray: Annotated[Optional[str], typer.Option("--ray", help="Run on a Ray cluster: its ADDRESS, or 'auto'.")] = None,
        num_cpus: Annotated[float, typer.Option("--num-cpus", help="CPUs Ray reserves per task.")] = 1.0,
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results folder (default: <TASKS>-out).")] = None,
        max_cost: Annotated[Optional[float], typer.Option("--max-cost", help="Stop starting tasks after this many USD.")] = None,
        max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Stop starting tasks after this many tokens.")] = None,
        timeout: Annotated[float, typer.Option("--timeout", help="Wall-clock limit per task, in seconds.")] = 1800.0,
        repo: Annotated[Optional[str], typer.Option("--repo", help="Default repo (path or git URL).")] = None,
        ref: Annotated[str, typer.Option("--ref", help="Default git ref to check out.")] = "",
        setup: Annotated[str, typer.Option("--setup", help="Default setup command.")] = "",
        check: Annotated[str, typer.Option("--check", help="Default check command.")] = "",
        mode: Annotated[str, typer.Option("--mode", help="Default mode for the agents.")] = "",
        max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Default step limit per task.")] = None,
        output_format: Annotated[str, typer.Option("--output-format", help="text or json (one event per line).")] = "text",
        report: Annotated[Optional[Path], typer.Option("--report", help="Print the summary table of an OUT folder.")] = None,
        allow_escalation: Annotated[bool, typer.Option("--allow-escalation", help="Let the agents' commands leave the sandbox when they ask to (not given: refused).")] = False,
    ) -> None:
        """Run many tasks, each in its own checkout; results in OUT/results.jsonl. Rerun to resume."""
        if report is not None:
            from kimicode.manage.batch_view import report as print_report

            raise typer.Exit(print_report(report))
        if tasks is None:
            raise _fail("give a TASKS.jsonl (kimicode batch TASKS.jsonl), or --report OUT")
        if output_format not in ("text", "json"):
            raise _fail(f"unknown --output-format '{output_format}': use text or json")
        if workers is not None and workers < 1:
            raise _fail("--workers must be at least 1")
        if timeout <= 0:
            raise _fail("--timeout must be positive")
        raise typer.Exit(
            _run(
                tasks, workers, ray, num_cpus, out, max_cost, max_tokens, output_format,
                {"repo": repo or "", "ref": ref, "setup": setup, "check": check, "mode": mode,
                 "max_steps": max_steps, "timeout": timeout, "allow_escalation": allow_escalation},
            )
        )


def _run(
    tasks_path: Path,
    workers: int | None,
    ray: str | None,
    num_cpus: float,
    out: Path | None,
    max_cost: float | None,
    max_tokens: int | None,
    output_format: str,
    defaults: dict[str, Any],
) -> int:
    from kimicode.batch.driver import BatchOptions, run_local
    from kimicode.batch.tasks import Defaults, TaskFileError, is_url, load_tasks
    from kimicode.config import NO_KEY, ConfigError, load_config
    from kimicode.manage.batch_view import JsonReporter, TextReporter

    try:
        config = load_config()
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    if not config.api_key:
        raise _fail(NO_KEY.format(home=config.home))
    if defaults["repo"] and not is_url(defaults["repo"]):
        defaults["repo"] = str(Path(defaults["repo"]).resolve())
    try:
        specs = load_tasks(tasks_path, Defaults(**defaults))
    except TaskFileError as exc:
        raise _fail(str(exc)) from exc
    out_dir = out if out is not None else Path(f"{tasks_path.stem}-out")
    options = BatchOptions(
        out=out_dir.resolve(),
        out_label=str(out_dir),
        workers=workers or (0 if ray else DEFAULT_WORKERS),
        max_cost=max_cost,
        max_tokens=max_tokens,
        limiter_start=config.swarm_concurrency,
        ray_address=ray,
        num_cpus=num_cpus,
    )
    reporter = JsonReporter() if output_format == "json" else TextReporter(options.out)

    async def main() -> Any:
        current = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if current is not None:  # SIGTERM ends a batch as Ctrl-C does: cancel, record, stay resumable
            loop.add_signal_handler(signal.SIGTERM, current.cancel)
        if ray is None:
            return await run_local(specs, options, reporter)
        from kimicode.batch.ray_engine import RayUnavailable, run_ray

        try:
            return await run_ray(specs, options, reporter, config)
        except RayUnavailable as exc:
            return str(exc)

    try:
        summary = asyncio.run(main())
    except KeyboardInterrupt:
        sys.stderr.write("kimicode: batch interrupted; rerun the same command to finish\n")
        return EXIT_INTERRUPTED
    if isinstance(summary, str):
        raise _fail(summary)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_STOPPED if summary.stopped else EXIT_OK
