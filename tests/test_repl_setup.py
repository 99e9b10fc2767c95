"""No API key yet: the REPL asks for one, checks it with GET /models, saves it privately, and goes on."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply
from tests.replpty import Repl
from kimicode.frontends.repl.setup import save_settings


def test_guided_setup_checks_and_saves_the_key(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    with FakeLLM(api_key="good-key-123") as fake:
        fake.script(Reply(content="hello with the new key"))
        repl = Repl(home, workspace, fake.base_url, env={"KIMI_API_KEY": ""})
        try:
            repl.expect("API key:")
            repl.send_line("wrong-key")
            repl.expect("rejected the key")
            repl.expect("API key:")
            repl.send_line("good-key-123")
            repl.expect("key works")
            repl.wait_prompt()
            repl.send_line("hi")
            repl.expect("hello with the new key")
        finally:
            repl.close()
        assert fake.chat_requests[0].headers["authorization"] == "Bearer good-key-123"
        assert [r.path for r in fake.all_requests[:2]] == ["/v1/models", "/v1/models"]
    config_file = home / "config.toml"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert tomllib.loads(config_file.read_text())["api_key"] == "good-key-123"


def test_headless_without_a_key_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = run_cli(["-p", "task"], home=tmp_path / "home", cwd=tmp_path, env_extra={"KIMI_API_KEY": ""})
    assert proc.returncode == 2
    assert "no API key" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_save_settings_keeps_other_keys_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('model = "kimi-k2.5"\napi_key = "old"\n\n[mcp]\nx = 1\n')
    save_settings(path, {"api_key": "new", "base_url": "http://127.0.0.1:1/v1"})
    data = tomllib.loads(path.read_text())
    assert data == {"model": "kimi-k2.5", "api_key": "new", "base_url": "http://127.0.0.1:1/v1", "mcp": {"x": 1}}


def test_setup_for_a_custom_endpoint_asks_which_model(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    with FakeLLM(api_key="good-key-123") as fake:
        fake.extra_models = [("qwen3-coder", 131072), ("glm-4.6", None)]
        fake.script(Reply(content="hello from the chosen model"))
        repl = Repl(home, workspace, fake.base_url, env={"KIMI_API_KEY": ""})
        try:
            repl.expect("API key:")
            repl.send_line("good-key-123")
            offered = repl.expect("Model [1]:")
            assert "1) kimi-k2.5 (262,144 tokens)" in offered and "2) qwen3-coder (131,072 tokens)" in offered
            assert "3) glm-4.6" in offered
            repl.send_line("2")
            repl.wait_prompt()
            repl.send_line("hi")
            repl.expect("hello from the chosen model")
        finally:
            repl.close()
        assert fake.chat_requests[0].body["model"] == "qwen3-coder"
    assert tomllib.loads((home / "config.toml").read_text())["model"] == "qwen3-coder"
