"""Time from `session/prompt` to the first `agent_message_chunk`, against the model's own first token
(target: at most 20 ms more).

The scripted model server answers every request after the same delay. The model's time to first token
is measured with a plain streaming HTTP request to it (no agent in between); the agent's with the ACP
SDK's client side driving a real `kimicode acp` subprocess: the prompt is sent, and the clock stops when
the first agent_message_chunk arrives. The two are interleaved (a direct request, then a turn, and so on)
so both see the same load. The first turn of a fresh process is the warm-up: it is printed on its own
(it imports the model client's SDK, unless that was warmed meanwhile) and kept out of the medians. Prints
medians with min–max, the difference of the medians, and a verdict against the target.

    python benchmarks/acp_latency.py [TURNS] [DELAY_MS]
    ACP_BENCH_IDLE=3 python benchmarks/acp_latency.py   # the first prompt 3 s after session/new (a user typing)

Seen here (2 cores, shared): warm turns +2.6 to +6 ms over the model's first token; a fresh process's first
turn +23 to +66 ms when it comes 3 s after session/new, about +0.5 s when it comes at once (the SDK import
still running in the background).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from acp import text_block  # noqa: E402

from benchmarks.harness import check_runs, machine_line, stats, target_line  # noqa: E402
from tests.acpclient import EditorClient, running_agent  # noqa: E402
from tests.clirun import write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM, Reply  # noqa: E402

TARGET_MS = 20.0


def model_first_token(base_url: str) -> float:
    """Seconds from sending a streaming chat request to the first content delta, with nothing between."""
    parts = urlsplit(base_url)
    body = json.dumps({"model": "kimi-k2.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    connection.request("POST", parts.path + "/chat/completions", body, {"Content-Type": "application/json", "Authorization": "Bearer test-key"})
    response = connection.getresponse()
    while True:
        line = response.readline()
        if not line:
            raise RuntimeError("the stream ended without content")
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        choices = json.loads(line[6:]).get("choices") or [{}]
        if (choices[0].get("delta") or {}).get("content"):
            elapsed = time.perf_counter() - started
            connection.close()
            return elapsed


async def interleaved_firsts(base_url: str, home: Path, ws: Path, turns: int) -> tuple[list[float], list[float]]:
    """Per turn: seconds to the model's first token over plain HTTP, then seconds from session/prompt to the
    first agent_message_chunk (the first turn is a fresh process's first turn)."""
    client = EditorClient()
    firsts: list[float] = []
    direct: list[float] = []
    async with running_agent(client, home, ws, base_url) as (conn, _):
        session = await conn.new_session(cwd=str(ws), mcp_servers=[])
        await asyncio.sleep(float(os.environ.get("ACP_BENCH_IDLE", "0.3")))  # the user typing the first prompt
        for turn in range(turns):
            direct.append(await asyncio.to_thread(model_first_token, base_url))
            seen = len(client.updates)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await conn.prompt(session_id=session.session_id, prompt=[text_block(f"turn {turn}")])
            chunk_at = next(
                at for at, update in client.update_times[seen:] if update.session_update == "agent_message_chunk"
            )
            firsts.append(chunk_at - started)
    return direct, firsts


def main() -> None:
    turns = check_runs(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
    delay = (float(sys.argv[2]) if len(sys.argv) > 2 else 100.0) / 1000
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as fake:
        home, ws = Path(tmp) / "home", Path(tmp) / "ws"
        ws.mkdir()
        write_home_config(home, "")
        fake.responder = lambda request: Reply(content="Hello from the model, streamed in small pieces.", delay=delay)
        direct, agent = asyncio.run(interleaved_firsts(fake.base_url, home, ws, turns + 1))
    cold = agent[0]
    model, warm = stats(direct[1:]), stats(agent[1:])
    difference = (warm.median - model.median) * 1000
    print(f"model first token (direct HTTP, server delay {delay * 1000:.0f} ms): {model.show(1000, 1, 'ms')}")
    print(f"session/prompt -> first agent_message_chunk:        {warm.show(1000, 1, 'ms')}")
    print(target_line("agent over the model (difference of the medians)", difference, TARGET_MS, "ms"))
    print(f"first turn of a fresh process (warm-up, not in the medians): {cold * 1000:.1f} ms "
          f"({(cold - model.median) * 1000:+.1f} ms over the model)")
    print(machine_line())


if __name__ == "__main__":
    main()
