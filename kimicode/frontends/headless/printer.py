"""Headless front end: run one task to completion and report it as text, json or stream-json."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

from kimicode import __version__
from kimicode.agent import events as ev
from kimicode.agent.policy import ApprovalDecision
from kimicode.agent.runtime import Runtime
from kimicode.llm.messages import Image
from kimicode.security.redact import redact, redact_obj

if TYPE_CHECKING:
    from kimicode.frontends.common.sessions import OpenedSession

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
OUTPUT_FORMATS = ("text", "json", "stream-json")


def compose_task(argument: str | None, stdin_text: str | None) -> str:
    """The argument is the instruction and piped stdin its context; either alone is the task."""
    argument = (argument or "").strip()
    stdin_text = (stdin_text or "").strip()
    if argument and stdin_text:
        return f"{argument}\n\n<stdin>\n{stdin_text}\n</stdin>"
    return argument or stdin_text


def result_object(result: ev.RunResult, runtime: Runtime) -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": "error" if result.subtype == "interrupted" else result.subtype,
        "is_error": result.is_error,
        "result": result.result,
        "submitted": result.submitted,
        "session_id": runtime.session_id,
        "num_steps": result.num_steps,
        "usage": result.usage,
        "duration_ms": result.duration_ms,
        "model": runtime.config.model,
        "mode": runtime.config.mode,
        **result.extra,
    }


class HeadlessPrinter:
    """Renders events: progress on stderr; the result (text/json) or every event (stream-json) on stdout."""

    def __init__(self, runtime: Runtime, fmt: str, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.runtime = runtime
        self.fmt = fmt
        # Looked up now, not at import: the CLI puts a redacting filter over sys.stderr before it runs.
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._text: dict[str, str] = {}
        self._thinking: dict[str, str] = {}
        self._refused: set[str] = set()  # call ids already reported by their refusal line

    def _emit_json(self, obj: dict[str, Any]) -> None:
        # stdout's one filter for json and stream-json: strings are redacted before they are escaped.
        self.out.write(json.dumps(redact_obj(obj), ensure_ascii=False) + "\n")
        self.out.flush()

    def _progress(self, line: str) -> None:
        if self.fmt != "stream-json":
            self.err.write(line + "\n")
            self.err.flush()

    def start(self) -> None:
        if self.fmt == "stream-json":
            config = self.runtime.config
            self._emit_json(
                {
                    "type": "system",
                    "subtype": "init",
                    "session_id": self.runtime.session_id,
                    "model": config.model,
                    "mode": config.mode,
                    "cwd": str(config.work_dir),
                    "tools": list(self.runtime.tools),
                    "version": __version__,
                }
            )

    def event(self, event: ev.Event) -> None:
        stream = self.fmt == "stream-json"
        agent = getattr(event, "agent", "")
        if isinstance(event, ev.TextDelta):
            self._text[agent] = self._text.get(agent, "") + event.text
        elif isinstance(event, ev.ThinkingDelta):
            self._thinking[agent] = self._thinking.get(agent, "") + event.text
        elif isinstance(event, ev.Usage):
            text, thinking = self._text.pop(agent, ""), self._thinking.pop(agent, "")
            if stream and (text or thinking):
                message: dict[str, Any] = {"type": "assistant", "text": text, "agent": agent}
                if thinking:
                    message["thinking"] = thinking
                self._emit_json(message)
            if stream:
                self._emit_json({"type": "usage", **asdict(event)})
        elif isinstance(event, ev.ToolCallStart):
            if stream:
                self._emit_json(
                    {"type": "tool_use", "id": event.call_id, "name": event.name, "input": event.args, "agent": agent}
                )
            self._progress(f"→ {event.summary}")
        elif isinstance(event, ev.ToolCallEnd):
            result = event.result
            if stream:
                self._emit_json(
                    {
                        "type": "tool_result",
                        "id": event.call_id,
                        "name": event.name,
                        "is_error": result.is_error,
                        "content": result.text,
                        "images": [image.describe() for image in result.images],
                        "agent": agent,
                    }
                )
            elif result.is_error and event.call_id not in self._refused:
                first = result.text.strip().splitlines()[0] if result.text.strip() else "failed"
                self._progress(f"  ✗ {first[:200]}")
        elif isinstance(event, ev.Refused):
            self._refused.add(event.call_id)
            if stream:
                self._emit_json({"type": "refused", **asdict(event)})
            self.err.write(refusal_line(event) + "\n")  # every format: a refusal is never silent
            self.err.flush()
        elif isinstance(event, ev.ApprovalRequest):
            if stream:
                self._emit_json({"type": "approval_request", **asdict(event)})
        elif isinstance(event, ev.Error):
            if stream:
                self._emit_json({"type": "error", "message": event.message, "retrying": event.retrying, "agent": agent})
            self._progress(f"kimicode: {event.message}")
        elif isinstance(event, ev.SubAgentUpdate):
            if stream:
                self._emit_json({"type": "subagent", **asdict(event)})
            elif event.state in ("done", "failed", "cancelled"):
                why = f": {event.result}" if event.state == "failed" and event.result else ""
                self._progress(f"[{event.agent} {event.role}] {event.state} after {event.steps} steps{why}")
        elif isinstance(event, ev.Compacted):
            if stream:
                self._emit_json({"type": "compacted", **asdict(event)})
            self._progress(f"kimicode: context compacted ({event.tokens_before} → {event.tokens_after} tokens)")

    def finish(self, result: ev.RunResult) -> None:
        obj = result_object(result, self.runtime)
        if self.fmt == "text":
            summary = run_summary(result)
            if summary:
                self._progress(f"kimicode: {summary}")
            if result.is_error:
                self.err.write(f"kimicode: {result.subtype}: {result.result}\n")
            elif result.result:
                self.out.write(redact(result.result.rstrip("\n")) + "\n")
            self.out.flush()
        else:
            self._emit_json(obj)


def run_summary(result: ev.RunResult) -> str:
    """One line of accounting for the end of a run: steps, critical path, tool calls, time, cost."""
    extra = result.extra
    if "critical_steps" not in extra:
        return ""
    steps = extra.get("total_steps", result.num_steps)
    calls = extra.get("total_tool_calls", 0)
    parts = [f"{steps} step{'s' * (steps != 1)}", f"{calls} tool call{'s' * (calls != 1)}"]
    if extra.get("sub_agents"):
        # The critical path only differs from the total when sub-agents ran in parallel.
        path = f"{extra['critical_steps']} on the critical path"
        if extra.get("forced_waves"):
            path += f", {extra['critical_steps_capped']} with the {extra['forced_waves']} extra waves the concurrency cap forced"
        parts[0] += f" ({path})"
        parts.append(f"{extra['sub_agents']} sub-agents")
        if extra.get("concurrency_reached"):
            parts.append(f"concurrency reached {extra['concurrency_reached']} (limit {extra['concurrency_limit']})")
    parts.append(f"{result.duration_ms / 1000:.1f}s")
    parts.append(f"${float(result.usage.get('cost_usd', 0.0)):.4f}")
    return ", ".join(parts)


def refusal_line(event: ev.Refused) -> str:
    who = f"[{event.agent}] " if event.agent else ""
    return f"kimicode: refused {who}{event.summary} ({event.reason})"


def headless_approver(runtime: Runtime, err: TextIO = sys.stderr) -> Callable[[ev.ApprovalRequest], Any]:
    """The headless policy refuses instead of asking; should a question still come, nobody can say yes."""

    async def approve(request: ev.ApprovalRequest) -> ApprovalDecision:
        err.write(f"kimicode: refused {request.summary} ({request.reason}; run with -y to allow)\n")
        err.flush()
        return ApprovalDecision(
            False,
            f"This non-interactive run may not do that ({request.reason}); only read-only actions are allowed. "
            "Finish with what you can do, and say what the user should run.",
        )

    return approve


def exit_code(result: ev.RunResult) -> int:
    if result.subtype == "success":
        return EXIT_OK
    if result.subtype == "interrupted":
        return EXIT_INTERRUPTED
    if result.extra.get("error_kind") == "auth":
        return EXIT_USAGE
    return EXIT_FAILED


async def run_headless(
    runtime: Runtime,
    task: str,
    fmt: str,
    images: list[Image] | None = None,
    parts: list[dict[str, Any]] | None = None,
    opened: OpenedSession | None = None,
) -> int:
    from kimicode.agent.mcp_run import running_mcp
    from kimicode.agent.runtime import AGENT_MODES

    printer = HeadlessPrinter(runtime, fmt)
    printer.start()
    report_skill_problems(runtime, printer.err)
    report_sandbox(runtime, printer.err)
    notice = lambda line: _notice(printer.err, line)  # noqa: E731
    # A headless run keeps its mode, so servers whose tools it would never offer are not started at all.
    offers_mcp = runtime.config.mode in AGENT_MODES
    # MCP servers start in the background; with mcp_startup_wait > 0 the first request waits that long at most.
    async with running_mcp(runtime.config, notice, wait=runtime.config.mcp_startup_wait, start=offers_mcp) as mcp:
        overrides = {"extra_tools": mcp.tools} if mcp is not None else {}
        if opened is not None:  # log the run to the session and continue its history
            from kimicode.frontends.common.sessions import bind_agent

            agent = bind_agent(runtime, opened, headless_approver(runtime), **overrides)
        else:
            agent = runtime.agent(headless_approver(runtime), **overrides)
        result: ev.RunResult | None = None
        run = agent.run(task, images, parts)
        try:
            async for event in run:
                if isinstance(event, ev.Done):
                    result = event.result
                else:
                    printer.event(event)
        except asyncio.CancelledError:
            await run.aclose()
            result = ev.RunResult("interrupted", "interrupted by the user", submitted=False, num_steps=0)
            result.usage = agent.totals.as_dict()
        finally:
            from kimicode.vision.browser import close_session_browsers

            await close_session_browsers()
    assert result is not None
    printer.finish(result)
    return exit_code(result)


def _notice(err: TextIO, line: str) -> None:
    err.write(f"kimicode: {line}\n")
    err.flush()


def report_sandbox(runtime: Runtime, err: TextIO) -> None:
    """Said once per run: the sandbox asked for does not work here, so commands go through approvals."""
    from kimicode.security.sandbox import unavailable_notice

    line = unavailable_notice(runtime.ctx.sandbox)
    if line:
        _notice(err, line)


def report_skill_problems(runtime: Runtime, err: TextIO) -> None:
    """One stderr line per SKILL.md that was skipped, so a broken skill is never silently missing."""
    if runtime.skills is None:
        return
    for path, reason in runtime.skills.invalid:
        _notice(err, f"skipped invalid skill {path}: {reason}")
