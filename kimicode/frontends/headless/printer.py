"""Headless front end: run one task to completion and report it as text, json or stream-json."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from kimicode.agent import events as ev
from kimicode.agent.policy import ApprovalDecision
from kimicode.config import Config
from kimicode.frontends.common.stream_json import StreamJson, init_object, result_object
from kimicode.security.redact import redact, redact_obj
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.agent.runtime import Runtime

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# Every action the run needed was refused (DESIGN.md B.13; the rule is HeadlessPrinter.all_refused).
EXIT_REFUSED = 3
OUTPUT_FORMATS = ("text", "json", "stream-json")


def compose_task(argument: str | None, stdin_text: str | None) -> str:
    """The argument is the instruction and piped stdin its context; either alone is the task."""
    argument = (argument or "").strip()
    stdin_text = (stdin_text or "").strip()
    if argument and stdin_text:
        return f"{argument}\n\n<stdin>\n{stdin_text}\n</stdin>"
    return argument or stdin_text


class HeadlessPrinter:
    """Renders events: progress on stderr; the result (text/json) or every event (stream-json, converted by
    frontends/common/stream_json.py) on stdout.

    Each event type has its own small method (``_on_<Type>``) for what goes to stderr.
    """

    def __init__(self, config: Config, session_id: str, fmt: str, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.config = config
        self.session_id = session_id
        self.fmt = fmt
        self.stream = fmt == "stream-json"
        # Looked up now, not at import: the CLI puts a redacting filter over sys.stderr before it runs.
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._json = StreamJson(config)
        self._refused: set[str] = set()  # call ids already reported by their refusal line
        self._tasks_seen: set[str] = set()  # background tasks whose start was said
        self._errors_said: set[str] = set()  # the main agent's final errors, already on stderr
        self._calls: set[str] = set()  # every tool call of the run (sub-agents' too) …
        self._denied: set[str] = set()  # … and those refused, by the policy or by the headless approver

    def _emit_json(self, obj: dict[str, Any]) -> None:
        # stdout's one filter for json and stream-json: strings are redacted before they are escaped.
        self.out.write(json.dumps(redact_obj(obj), ensure_ascii=False) + "\n")
        self.out.flush()

    def _progress(self, line: str) -> None:
        if not self.stream:
            self.err.write(line + "\n")
            self.err.flush()

    def notice(self, line: str) -> None:
        """A line about the run itself (MCP, skills, sandbox): on stderr in every format."""
        self.err.write(f"kimicode: {line}\n")
        self.err.flush()

    def start(self, tools: list[str], extensions: dict[str, int] | None = None) -> None:
        """``extensions``: how many hooks, commands, agents and plugins were found (kimicode.extensions.summary)."""
        if self.stream:
            self._emit_json(init_object(self.config, self.session_id, tools, extensions))

    def event(self, event: ev.Event) -> None:
        if self.stream:
            for obj in self._json.convert(event):
                self._emit_json(obj)
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)

    def all_refused(self, result: ev.RunResult) -> bool:
        """The run ended, but only because the model gave up: it made at least one tool call, every one was
        refused, and it did not submit. A closing text answer does not count as the work it asked to do."""
        return result.subtype == "success" and not result.submitted and bool(self._calls) and self._calls <= self._denied

    def _on_ToolCallStart(self, event: ev.ToolCallStart) -> None:
        self._calls.add(event.call_id)
        self._progress(f"→ {event.summary}")

    def _on_ToolCallEnd(self, event: ev.ToolCallEnd) -> None:
        result = event.result
        if result.is_error and event.call_id not in self._refused:
            first = result.text.strip().splitlines()[0] if result.text.strip() else "failed"
            self._progress(f"  ✗ {first[:200]}")

    def _on_Refused(self, event: ev.Refused) -> None:
        self._refused.add(event.call_id)
        self._calls.add(event.call_id)
        self._denied.add(event.call_id)
        self.err.write(refusal_line(event) + "\n")  # every format: a refusal is never silent
        self.err.flush()

    def _on_ApprovalRequest(self, event: ev.ApprovalRequest) -> None:
        self._calls.add(event.call_id)
        self._denied.add(event.call_id)  # nobody answers yes headless (headless_approver)

    def _on_Error(self, event: ev.Error) -> None:
        self._progress(f"kimicode: {event.message}")
        if not self.stream and not event.retrying and not event.agent:  # (stream-json: on stdout only)
            self._errors_said.add(event.message)

    def _on_SubAgentUpdate(self, event: ev.SubAgentUpdate) -> None:
        if event.state in ("done", "failed", "cancelled"):
            why = f": {event.result}" if event.state == "failed" and event.result else ""
            self._progress(f"[{event.agent} {event.role}] {event.state} after {plural(event.steps, 'step')}{why}")

    def _on_Compacted(self, event: ev.Compacted) -> None:
        self._progress(f"kimicode: context compacted ({event.tokens_before} → {event.tokens_after} tokens)")

    def _on_Steered(self, event: ev.Steered) -> None:
        self._progress(f"» {' '.join(event.text.split())[:200]}")

    def _on_TodoUpdate(self, event: ev.TodoUpdate) -> None:
        from kimicode.tools.todo import todo_summary

        who = f"[{event.agent}] " if event.agent else ""
        self._progress(f"{who}todo: {todo_summary(event.items)}")

    def _on_TaskUpdate(self, event: ev.TaskUpdate) -> None:
        if self.stream:
            return
        if event.state == "running":
            if event.task_id not in self._tasks_seen:
                self._tasks_seen.add(event.task_id)
                self._progress(f"task {event.task_id} running: {event.command[:120]}")
        else:
            code = f" (exit {event.exit_code})" if event.exit_code is not None else ""
            self._progress(f"task {event.task_id} {event.state}{code}: {event.command[:120]}")

    def finish(self, result: ev.RunResult) -> None:
        if self.all_refused(result):
            result.subtype = "error"
            result.extra["error_kind"] = "refused"
            self._errors_said.add(result.result)  # the model's closing words go out as its answer, below
            self.err.write(
                f"kimicode: every action this run needed was refused ({plural(len(self._calls), 'tool call')}); "
                "nothing was done (the lines above say why each was refused)\n"
            )
            self.err.flush()
            if self.fmt == "text" and result.result:
                self.out.write(redact(result.result.rstrip("\n")) + "\n")
        obj = result_object(result, self.config, self.session_id)
        if self.fmt == "text":
            # A run that failed before the model said a word has nothing to account for.
            summary = run_summary(result, self.config) if result.usage.get("input_tokens") or not result.is_error else ""
            if summary:
                self._progress(f"kimicode: {summary}")
            if result.is_error:
                if result.result not in self._errors_said:  # each error is said once
                    self.err.write(f"kimicode: {result.subtype}: {result.result}\n")
            elif result.result:
                self.out.write(redact(result.result.rstrip("\n")) + "\n")
            self.out.flush()
        else:
            if result.is_error and result.result not in self._errors_said:  # every failure: one stderr line
                self.err.write(f"kimicode: {result.subtype}: {result.result}\n")
                self.err.flush()
            self._emit_json(obj)


def early_exit(
    fmt: str, kind: str, message: str, code: int, *, session_id: str = "", started: float | None = None
) -> int:
    """A run that ends before (or outside) the agent: one line on stderr; with json or stream-json also the
    one result object every exit prints (DESIGN.md B.10), its ``error_kind`` saying what went wrong."""
    sys.stderr.write(f"kimicode: {message}\n")
    sys.stderr.flush()
    if fmt in ("json", "stream-json"):
        elapsed = int((time.monotonic() - started) * 1000) if started is not None else 0
        obj = {
            "type": "result",
            "subtype": "error",
            "is_error": True,
            "result": message,
            "submitted": False,
            "session_id": session_id,
            "num_steps": 0,
            "usage": {},
            "duration_ms": elapsed,
            "error_kind": kind,
        }
        sys.stdout.write(json.dumps(redact_obj(obj), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return code


def run_summary(result: ev.RunResult, config: Config) -> str:
    """One line of accounting for the end of a run: steps, critical path, tool calls, time, and the cost
    where the prices are known (else the tokens)."""
    from kimicode.llm.prices import prices_known

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
            path += f", {extra['critical_steps_capped']} with the {extra['forced_waves']} extra waves the endpoint's request limit forced"
        parts[0] += f" ({path})"
        parts.append(plural(extra['sub_agents'], 'sub-agent'))
        if extra.get("concurrency_reached"):
            parts.append(f"concurrency reached {extra['concurrency_reached']} (limit {extra['concurrency_limit']})")
    parts.append(f"{result.duration_ms / 1000:.1f}s")
    if prices_known(config):
        parts.append(f"${float(result.usage.get('cost_usd', 0.0)):.4f}")
    else:
        tokens = int(result.usage.get("input_tokens", 0)) + int(result.usage.get("output_tokens", 0))
        parts.append(plural(tokens, "token"))
    return ", ".join(parts)


def refusal_line(event: ev.Refused) -> str:
    who = f"[{event.agent}] " if event.agent else ""
    return f"kimicode: refused {who}{event.summary} ({event.reason})"


def headless_approver(err: TextIO | None = None) -> Callable[[ev.ApprovalRequest], Any]:
    """The headless policy refuses instead of asking; should a question still come, nobody can say yes."""

    async def approve(request: ev.ApprovalRequest) -> ApprovalDecision:
        stream = err or sys.stderr  # looked up late: the CLI's redacting filter is in place by then
        stream.write(f"kimicode: refused {request.summary} ({request.reason}; run with -y to allow)\n")
        stream.flush()
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
    if result.extra.get("error_kind") == "refused":
        return EXIT_REFUSED
    return EXIT_FAILED


def report_sandbox(runtime: Runtime, notice: Callable[[str], None]) -> None:
    """Said once per run: the sandbox asked for does not work here, so commands go through approvals."""
    from kimicode.security.sandbox import unavailable_notice

    line = unavailable_notice(runtime.ctx.sandbox)
    if line:
        notice(line)


def report_skill_problems(runtime: Runtime, notice: Callable[[str], None]) -> None:
    """One stderr line per SKILL.md (or project instruction file) that was skipped, so neither is ever
    silently missing."""
    for problem in runtime.instruction_problems:
        notice(problem)
    if runtime.skills is None:
        return
    for path, reason in runtime.skills.invalid:
        notice(f"skipped invalid skill {path}: {reason}")
