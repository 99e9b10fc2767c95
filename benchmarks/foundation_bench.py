"""Foundation timings against the scripted model server (medians over several runs).

    python benchmarks/foundation_bench.py [--runs 5]

Prints: one-shot wall time (`kimicode -p`, one reply), per-step overhead (100 `bash true` steps), peak RSS,
the size of the first request, and the cost of building a long request (ours vs the SDK's typed path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.clirun import cli_env, write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM, Reply, ToolCall  # noqa: E402


def run_once(fake: FakeLLM, home: Path, cwd: Path, args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one kimicode process."""
    env = cli_env(home, fake.base_url)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kimicode", *args], cwd=cwd, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"kimicode exited {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss // 1024


def bash_spawn_seconds(n: int = 50) -> float:
    import asyncio

    async def spawn() -> None:
        p = await asyncio.create_subprocess_exec("bash", "-c", "true", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        await p.communicate()

    async def many() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await spawn()
        return (time.perf_counter() - started) / n

    return asyncio.run(many())


def request_build_ms(n_messages: int) -> tuple[float, float]:
    """Milliseconds to turn a history of n messages into request bytes: ours vs openai's typed create()."""
    from openai._utils import maybe_transform
    from openai.types.chat import completion_create_params

    from kimicode.config import Config
    from kimicode.llm.client import ChatClient
    from kimicode.llm.profiles import profile_for

    messages: list[dict] = [{"role": "system", "content": "x" * 800}]
    for i in range(n_messages // 2):
        call_id = f"bash:{i}"
        messages.append({"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "bash", "arguments": json.dumps({"command": f"echo {i}"})}}]})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "output line\n" * 20})
    client = ChatClient(Config(api_key="k"), profile_for("kimi-k2.5"))

    def ours() -> None:
        json.dumps(client.build_body(messages, [], thinking=True), ensure_ascii=False).encode()

    def sdk() -> None:
        params = {"model": "kimi-k2.5", "messages": messages, "stream": True}
        json.dumps(maybe_transform(params, completion_create_params.CompletionCreateParamsStreaming)).encode()

    def median_ms(fn) -> float:  # type: ignore[no-untyped-def]
        samples = []
        for _ in range(7):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1000)
        return statistics.median(samples)

    return median_ms(ours), median_ms(sdk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as fake:
        home, cwd = Path(tmp) / "home", Path(tmp) / "ws"
        cwd.mkdir()
        write_home_config(home, "")
        one_shot, rss = [], []
        for _ in range(opts.runs):
            fake.script(Reply(content="done"))
            wall, peak = run_once(fake, home, cwd, ["-p", "say done"])
            one_shot.append(wall)
            rss.append(peak)
        first_request_bytes = len(fake.requests[0].raw)

        long_runs = []
        for _ in range(max(opts.runs // 2, 2)):
            fake.script(*[Reply(tool_calls=[ToolCall("bash", {"command": "true"})]) for _ in range(opts.steps)], Reply(content="done"))
            wall, peak = run_once(fake, home, cwd, ["-p", "-y", "--max-steps", str(opts.steps + 5), "loop"])
            long_runs.append(wall)
            rss.append(peak)
    spawn = bash_spawn_seconds()
    one = statistics.median(one_shot)
    per_step = (statistics.median(long_runs) - one) / opts.steps
    ours_ms, sdk_ms = request_build_ms(400)
    print(f"one-shot wall (kimicode -p, 1 reply)      median {one * 1000:7.0f} ms   target ≤ 1500 ms")
    print(f"per step ({opts.steps} × bash true)             median {per_step * 1000:7.1f} ms   (bash spawn alone {spawn * 1000:.1f} ms)")
    print(f"per-step overhead beyond the command       median {(per_step - spawn) * 1000:7.1f} ms   target ≤ 5 ms")
    print(f"peak RSS                                   max    {max(rss):7d} MB   target ≤ 80 MB")
    print(f"first request (system prompt + tools)             {first_request_bytes:7d} B    target ≤ 8192 B")
    print(f"request build, 400 messages: ours {ours_ms:.2f} ms vs SDK typed path {sdk_ms:.2f} ms  (ratio {sdk_ms / ours_ms:.0f}x)")


if __name__ == "__main__":
    main()
