"""What a headless run says is true: exit 3 when every action was refused, @path attached (or named when
too big), config typos named, costs only at known prices and rounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kimicode.config import Config
from kimicode.frontends.common.media import MAX_ATTACH_BYTES
from kimicode.frontends.headless.printer import EXIT_REFUSED
from kimicode.llm.prices import COST_DECIMALS, prices_known
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall

FAST_RETRIES = "retry_base_delay = 0.01\nmax_retries = 3\n"
PRICED = FAST_RETRIES + '[prices."kimi-k2.5"]\ninput = 0.6\ncached_input = 0.1\noutput = 3.0\n'
# 968 input tokens at $0.60/M: 0.0005807999999999999 in binary floating point.
NOISY_USAGE = {"prompt_tokens": 968, "completion_tokens": 0, "total_tokens": 968}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, FAST_RETRIES)
    return home


def kimicode(fake: FakeLLM, home: Path, cwd: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(list(args), home=home, cwd=cwd, base_url=fake.base_url)


def test_a_run_whose_every_action_was_refused_exits_3(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch made.txt"})]),
        Reply(content="I could not create it; run `touch made.txt` yourself."),
    )
    proc = kimicode(fake_llm, home, workspace, "-p", "make a file", "--output-format", "json")
    assert proc.returncode == EXIT_REFUSED == 3, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["error_kind"], result["is_error"], result["subtype"]) == ("refused", True, "error")
    assert "touch made.txt" in result["result"]
    assert "every action this run needed was refused (1 tool call)" in proc.stderr
    assert not (workspace / "made.txt").exists()


def test_a_run_with_one_action_done_is_not_refused(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    (workspace / "a.txt").write_text("alpha\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("view", {"path": "a.txt"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch made.txt"})]),
        Reply(content="Read it; could not write."),
    )
    proc = kimicode(fake_llm, home, workspace, "-p", "read then write")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Read it; could not write."


def test_at_path_in_p_sends_the_file_and_keeps_it_out_of_the_title(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("the attached words 4711\n")
    big = workspace / "big.log"
    big.write_bytes(b"x" * (MAX_ATTACH_BYTES + 1))
    fake_llm.script(Reply(content="Summarised."))
    proc = kimicode(fake_llm, home, workspace, "-p", "summarise @a.txt and @big.log")
    assert proc.returncode == 0, proc.stderr
    sent = fake_llm.chat_requests[0].last_user_text()
    assert sent.startswith("summarise @a.txt and @big.log\n\n")
    assert '<file path="a.txt">\nthe attached words 4711\n</file>' in sent
    assert "xxxx" not in sent
    [line] = [line for line in proc.stderr.splitlines() if "@big.log" in line]
    assert f"over the {MAX_ATTACH_BYTES // 1024} KB limit" in line
    listing = run_cli(["sessions"], home=home, cwd=workspace)
    assert "summarise @a.txt and @big.log" in listing.stdout
    assert "<file" not in listing.stdout and "4711" not in listing.stdout


def test_config_typos_are_named_with_the_closest_key(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    write_home_config(home, FAST_RETRIES + 'modle = "kimi-k2.5"\n')
    (workspace / ".kimicode").mkdir()
    (workspace / ".kimicode" / "config.toml").write_text('thinking_stlye = "none"\n')
    fake_llm.script(Reply(content="ok"))
    proc = kimicode(fake_llm, home, workspace, "-p", "hi")
    assert proc.returncode == 0, proc.stderr
    assert f"{home / 'config.toml'}: unknown key 'modle' (did you mean 'model'?)" in proc.stderr
    assert "unknown key 'thinking_stlye' (did you mean 'thinking_style'?)" in proc.stderr


def test_a_wrong_type_reads_as_english(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    write_home_config(home, 'max_steps = "ten"\n')
    proc = kimicode(fake_llm, home, workspace, "-p", "hi")
    assert proc.returncode == 2
    assert "'max_steps' must be an integer, got 'ten'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_cost_where_the_endpoints_prices_are_not_known(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(content="ok", usage=NOISY_USAGE), Reply(content="ok", usage=NOISY_USAGE))
    proc = kimicode(fake_llm, home, workspace, "-p", "hi", "--output-format", "stream-json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    [usage] = [e for e in events if e["type"] == "usage"]
    assert usage["cost"] is None and usage["total_cost"] is None and usage["prompt_tokens"] == 968
    assert events[-1]["usage"]["cost_usd"] is None
    text = kimicode(fake_llm, home, workspace, "-p", "hi")
    assert "$" not in text.stderr and "968 tokens" in text.stderr


def test_costs_at_configured_prices_are_rounded(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    write_home_config(home, PRICED)
    fake_llm.script(Reply(content="ok", usage=NOISY_USAGE))
    proc = kimicode(fake_llm, home, workspace, "-p", "hi", "--output-format", "stream-json")
    assert proc.returncode == 0, proc.stderr
    assert "0.0005807999" not in proc.stdout
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    [usage] = [e for e in events if e["type"] == "usage"]
    assert usage["cost"] == usage["total_cost"] == round(968 * 0.6 / 1e6, COST_DECIMALS) == 0.000581
    assert events[-1]["usage"]["cost_usd"] == 0.000581


def test_published_prices_count_on_moonshots_api_only() -> None:
    assert prices_known(Config(base_url="https://api.moonshot.ai/v1", model="kimi-k2.5"))
    assert not prices_known(Config(base_url="http://127.0.0.1:8000/v1", model="kimi-k2.5"))
    assert not prices_known(Config(base_url="https://api.moonshot.ai/v1", model="someone-elses-model"))
    assert prices_known(Config(base_url="http://127.0.0.1:8000/v1", model="mine", prices={"mine": (1.0, 1.0, 2.0)}))
