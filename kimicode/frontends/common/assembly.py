"""One run, assembled: the runtime for a session, its MCP servers, and the agent that continues the session.

Headless runs and ACP sessions are put together here the same way, top to bottom: build the runtime for the
session's id, start the MCP servers (waiting for them up to ``mcp_wait`` seconds, so a one-shot task sees
the tools it was asked to use), bind an agent to the session's history and log, and, when the run ends,
close the servers, the session's browser and its background tasks. The REPL uses the same pieces but keeps
its agent across mode, model and session switches.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kimicode.agent.loop import Agent, Approver
from kimicode.agent.runtime import AGENT_MODES, Runtime, build_runtime
from kimicode.config import Config
from kimicode.frontends.common.sessions import OpenedSession, bind_agent

if TYPE_CHECKING:
    from kimicode.mcp.manager import McpManager


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
    **agent_overrides: Any,
) -> AsyncIterator[AssembledRun]:
    """The run's parts for the length of the ``async with`` block; servers and browser are closed after it.

    A headless run keeps its mode, so servers whose tools it would never offer are not started at all.
    """
    from kimicode.agent.mcp_run import running_mcp

    runtime = build_runtime(config, session_id=opened.session.id, headless=headless)
    offers_mcp = config.mode in AGENT_MODES or not headless
    try:
        async with running_mcp(config, report, wait=mcp_wait, start=offers_mcp) as mcp:
            overrides = dict(agent_overrides)
            if mcp is not None:
                overrides["extra_tools"] = mcp.tools
            agent = bind_agent(runtime, opened, approver, **overrides)
            yield AssembledRun(config, opened, runtime, agent, mcp)
    finally:
        from kimicode.vision.browser import close_session_browsers

        if runtime.ctx.tasks is not None:
            await runtime.ctx.tasks.close()  # background tasks end with the session
        with contextlib.suppress(Exception):  # a browser that will not close must not hide the run's result
            await close_session_browsers()
