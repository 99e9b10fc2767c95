"""One run, assembled: the runtime for a session, its MCP servers, and the agent that continues the session.

Headless runs and ACP sessions are put together here the same way, top to bottom: build the runtime for the
session's id, start the MCP servers (waiting for them up to ``mcp_wait`` seconds, so a one-shot task sees
the tools it was asked to use), bind an agent to the session's history and log, and, when the run ends,
close the servers, the session's browser and its background tasks. The REPL uses the same pieces but keeps
its agent across mode, model and session switches.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kimicode.agent.callbacks import Approver
from kimicode.agent.loop import Agent
from kimicode.agent.runtime import AGENT_MODES, Runtime, build_runtime
from kimicode.config import Config
from kimicode.frontends.common.sessions import OpenedSession, bind_agent, fresh_history

if TYPE_CHECKING:
    from kimicode.llm.setup import ModelSetup
    from kimicode.mcp.manager import McpManager
    from kimicode.mcp.server_config import McpServerConfig
    from kimicode.tools.background import TaskManager


@dataclass
class AssembledRun:
    config: Config
    opened: OpenedSession
    runtime: Runtime
    agent: Agent
    mcp: McpManager | None


@contextlib.asynccontextmanager
async def assembled_run(
    config: Config,
    opened: OpenedSession,
    approver: Approver,
    *,
    report: Callable[[str], None],
    headless: bool,
    mcp_wait: float,
    extra_mcp: Sequence[McpServerConfig] = (),
    adapt_runtime: Callable[[Runtime], None] | None = None,
    model: ModelSetup | None = None,
    **agent_overrides: Any,
) -> AsyncIterator[AssembledRun]:
    """The run's parts for the length of the ``async with`` block; servers and browser are closed after it.

    A headless run keeps its mode, so servers whose tools it would never offer are not started at all.
    ``extra_mcp``: servers named for this run besides the configured ones (an editor's, over ACP).
    ``adapt_runtime`` sees the runtime before the agent is bound to it (an editor's hooks go into its
    tool context there). ``model``: the model and endpoint facts when the caller derived them already.
    """
    from kimicode.agent.mcp_run import running_mcp

    runtime = build_runtime(config, session_id=opened.session.id, headless=headless, model=model)
    if adapt_runtime is not None:
        adapt_runtime(runtime)
    offers_mcp = config.mode in AGENT_MODES or not headless
    try:
        async with running_mcp(config, report, wait=mcp_wait, start=offers_mcp, extra=extra_mcp) as mcp:
            overrides = dict(agent_overrides)
            if mcp is not None:
                overrides["extra_tools"] = mcp.tools
            agent = bind_agent(runtime, opened, approver, **overrides)
            if runtime.hooks is not None:
                runtime.hooks.open_session(opened.session.id, "resume" if opened.resumed else "startup", report)
            yield AssembledRun(config, opened, runtime, agent, mcp)
    finally:
        if runtime.hooks is not None:  # the session's end, whichever way the run ended
            with contextlib.suppress(Exception):  # noqa: BLE001 - a hook must not hide the run's result
                await runtime.hooks.event("SessionEnd", runtime.session_id, {"reason": "exit"}, report)

        if runtime.ctx.tasks is not None:
            await runtime.ctx.tasks.close()  # background tasks end with the session
        # A session's browser is started through that module, so a run that never loaded it has none to close
        # (and need not load it only to find that out).
        browsers = sys.modules.get("kimicode.vision.browser")
        if browsers is not None:
            with contextlib.suppress(Exception):  # a browser that will not close must not hide the run's result
                await browsers.close_session_browsers()
        await runtime.aclose()  # the model client's connections


def rebuilt_for_mode(
    config: Config,
    session_id: str,
    old: Agent,
    approver: Approver,
    *,
    adapt_runtime: Callable[[Runtime], None] | None = None,
    tasks: TaskManager | None = None,
    model: ModelSetup | None = None,
    **agent_overrides: Any,
) -> tuple[Runtime, Agent]:
    """A runtime for ``config.mode`` (its tools and system prompt, DESIGN.md B.7) and an agent that carries
    on ``old``'s conversation, session log, todo list, permission answers and totals; ``tasks``: the
    session's background tasks, kept across the switch."""
    runtime = build_runtime(config, session_id=session_id, tasks=tasks, model=model)
    if runtime.hooks is not None and old.hooks is not None:
        runtime.hooks.carry_over(old.hooks)  # the session started once, whatever its mode
    if adapt_runtime is not None:
        adapt_runtime(runtime)
    agent = runtime.agent(
        approver,
        messages=fresh_history(old.messages, runtime.system_prompt),
        on_message=old.on_message,
        on_compacted=old.on_compacted,
        on_todo=old.on_todo,
        todo_items=old.ctx.todo.snapshot() if old.ctx.todo is not None else [],
        policy=old.policy,
        thinking=config.thinking,
        totals=old.totals,
        **agent_overrides,
    )
    return runtime, agent
