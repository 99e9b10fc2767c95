"""GET /models asked while a one-shot run loads (kimicode/llm/early_models.py): still asked once per run and
before the first request, its answer still learned, and never handed to a client it was not asked for."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from kimicode.config import Config
from kimicode.llm.client import ChatClient
from kimicode.llm.early_models import ask_models_early, take_models
from kimicode.llm.endpoint import EndpointStore
from kimicode.llm.profiles import profile_for
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply

MODELS_PATH = "/v1/models"
WINDOW = 65536


def test_a_one_shot_run_asks_once_before_its_request_and_learns_the_answer(home: Path, workspace: Path) -> None:
    with FakeLLM(models_style="vllm", context_window=WINDOW) as server:
        server.script(Reply(content="done"))
        proc = run_cli(["-p", "say done"], home=home, cwd=workspace, base_url=server.base_url)
        paths = [(r.method, r.path) for r in server.all_requests]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert paths == [("GET", MODELS_PATH), ("POST", "/v1/chat/completions")]
    learned = json.loads((home / "endpoints.json").read_text(encoding="utf-8"))["endpoints"]
    assert learned[server.base_url.rstrip("/")]["windows"]["kimi-k2.5"] == WINDOW


def _probe(server: FakeLLM, home: Path, key: str) -> int:
    """One client's ask before its first request; the window it came to know."""
    config = Config(base_url=server.base_url, api_key=key, home=home, model="kimi-k2.5")
    store = EndpointStore(home)
    endpoint = store.load(server.base_url)
    endpoint.windows.clear()
    client = ChatClient(config, profile_for("kimi-k2.5"), endpoint, store)

    async def ready() -> None:
        try:
            await client.ready()
        finally:
            await client.aclose()

    asyncio.run(ready())
    return client.profile.context_window


def _asks(server: FakeLLM) -> list[str]:
    """The key each GET /models was asked with."""
    return [r.headers.get("authorization", "") for r in server.all_requests if r.path == MODELS_PATH]


def test_an_early_answer_goes_once_to_a_client_of_the_same_endpoint_and_key(tmp_path: Path) -> None:
    with FakeLLM(models_style="vllm", context_window=WINDOW) as server:
        ask_models_early(server.base_url, "k1")
        assert _probe(server, tmp_path, "k2") == WINDOW  # another key: asks for itself
        assert _probe(server, tmp_path, "k1") == WINDOW  # takes the early answer
        assert _probe(server, tmp_path, "k1") == WINDOW  # the next client asks again: no answer is reused
        asks = _asks(server)
    assert sorted(asks) == ["Bearer k1", "Bearer k1", "Bearer k2"]  # the early ask, then each client's own
    assert take_models(server.base_url, "k1") is None


def test_an_early_ask_that_failed_leaves_the_client_knowing_nothing_new(tmp_path: Path) -> None:
    with FakeLLM(models_style="vllm", context_window=WINDOW) as server:
        server.lists_models = False  # GET /models answers 404
        ask_models_early(server.base_url, "k")
        window = _probe(server, tmp_path, "k")
        asks = _asks(server)
    assert window == profile_for("kimi-k2.5").context_window
    assert asks == ["Bearer k"]  # the failure was the answer: not asked again
