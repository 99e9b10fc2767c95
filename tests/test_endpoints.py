"""Any endpoint, for real: vendor fields only where they are taken, a refused field dropped once and
remembered, every vendor's context overflow recognised (and compacted), windows read from GET /models,
and no unclosed connection left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kimicode.config import Config
from kimicode.llm.client import ChatClient
from kimicode.llm.endpoint import EndpointProfile, EndpointStore, vendor_of
from kimicode.llm.errors import context_overflow, error_text, images_refused, rejected_fields
from kimicode.llm.profiles import profile_for
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Fault, Reply, ToolCall
from tests.fake_llm.vendors import IMAGE_REFUSAL, OVERFLOW, STANDARD_MESSAGE_FIELDS, STRICT_STYLES, rejection


def big_output(word: str) -> str:
    return f"python3 -c \"print('{word}' * 20000)\""


# -- which fields go where ---------------------------------------------------------------------------------


def body_for(base_url: str, server: str = "", model: str = "kimi-k2.5", style: str = "auto") -> dict:
    config = Config(base_url=base_url, model=model, thinking_style=style)
    endpoint = EndpointProfile(base_url, vendor_of(base_url), server=server)
    client = ChatClient(config, profile_for(model), endpoint)
    return client.build_body([{"role": "user", "content": "hi"}], [], thinking=True, max_tokens=100, session_id="s1")


def test_moonshot_gets_its_fields_and_an_unknown_server_gets_none_of_them() -> None:
    moonshot = body_for("https://api.moonshot.ai/v1")
    assert moonshot["thinking"] == {"type": "enabled"} and moonshot["prompt_cache_key"] == "s1"
    assert moonshot["max_completion_tokens"] == 100 and "max_tokens" not in moonshot
    assert body_for("https://api.moonshot.cn/v1")["thinking"] == {"type": "enabled"}
    other = body_for("https://llm.example.com/v1")
    assert not {"thinking", "chat_template_kwargs", "prompt_cache_key", "max_completion_tokens"} & set(other)
    assert other["max_tokens"] == 100  # the field every server takes (llama-cpp-python ignores the newer one)
    openai = body_for("https://api.openai.com/v1", model="gpt-5")
    assert openai["max_completion_tokens"] == 100 and "thinking" not in openai


def test_vllm_and_sglang_switch_thinking_through_the_chat_template() -> None:
    for server in ("vllm", "sglang"):
        body = body_for("http://gpu-box:8000/v1", server=server, model="moonshotai/Kimi-K2.5")
        assert body["chat_template_kwargs"] == {"thinking": True} and "thinking" not in body
    # an unknown model has no thinking switch kimicode knows of, unless the user names one
    assert "chat_template_kwargs" not in body_for("http://gpu-box:8000/v1", server="vllm", model="qwen3-32b")
    named = body_for("http://gpu-box:8000/v1", server="vllm", model="qwen3-32b", style="chat_template")
    assert named["chat_template_kwargs"] == {"thinking": True}


def test_an_unknown_local_model_run_sends_no_vendor_field(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    """The bytes on the wire: a server that lists itself as llama.cpp gets standard fields only."""
    with FakeLLM(model="gemma-3", models_style="llama.cpp", context_window=8192) as server:
        server.script(Reply(content="hello"))
        proc = run_cli(["-p", "-m", "gemma-3", "hi"], home=home, cwd=workspace, base_url=server.base_url)
        assert proc.returncode == 0, proc.stderr
        raw = server.chat_requests[0].raw
    for field in (b'"thinking"', b'"chat_template_kwargs"', b'"prompt_cache_key"', b'"max_completion_tokens"'):
        assert field not in raw
    body = json.loads(raw)
    assert body["max_tokens"] <= 8192 - 256  # sized to the window GET /models reported
    saved = json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]
    assert saved["server"] == "llama.cpp" and saved["windows"]["gemma-3"] == 8192


# -- a refused field: drop it, retry once, remember it -------------------------------------------------


@pytest.mark.parametrize("style", STRICT_STYLES)
def test_a_strict_endpoint_is_asked_once_more_without_the_field_and_it_is_remembered(
    style: str, home: Path, workspace: Path
) -> None:
    accepted = frozenset({"model", "messages", "stream", "tools", "max_completion_tokens", "temperature", "top_p"})
    with FakeLLM(strict=style, accepted_fields=accepted) as server:
        server.script(Reply(content="first answer"), Reply(content="second answer"))
        first = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=server.base_url)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == "first answer"
        refused = [r for r in server.chat_requests if r.status != 200]
        sent = [r for r in server.chat_requests if r.status == 200]
        assert refused and len(sent) == 1
        # one field per refusal for the vendors that name one at a time, all at once for the others
        assert len(refused) <= 3
        assert "does not take" in first.stderr
        second = run_cli(["-p", "again"], home=home, cwd=workspace, base_url=server.base_url)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "second answer"
        later = server.chat_requests[len(refused) + 1 :]
    assert [r.status for r in later] == [200]  # no refusal the second time: nothing unknown was sent at all
    for field in (b'"thinking"', b'"prompt_cache_key"', b'"stream_options"'):
        assert field not in later[0].raw
    saved = json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]
    assert {"thinking", "prompt_cache_key", "stream_options"} <= set(saved["rejected"])


def test_a_refused_max_completion_tokens_turns_into_max_tokens(home: Path, workspace: Path) -> None:
    accepted = frozenset({"model", "messages", "stream", "stream_options", "tools", "max_tokens", "thinking",
                          "prompt_cache_key", "temperature", "top_p"})
    with FakeLLM(strict="groq", accepted_fields=accepted) as server:
        server.script(Reply(content="bounded"))
        proc = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=server.base_url)
        assert proc.returncode == 0, proc.stderr
        first, second = server.chat_requests
    assert first.status == 400 and "max_completion_tokens" in first.body
    assert second.status == 200 and "max_completion_tokens" not in second.body and second.body["max_tokens"] > 0
    saved = json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]
    assert saved["max_tokens_field"] == "max_tokens"


def test_reasoning_content_refused_on_assistant_messages_is_left_out(home: Path, workspace: Path) -> None:
    with FakeLLM(strict="groq", accepted_message_fields=STANDARD_MESSAGE_FIELDS) as server:
        server.script(
            Reply(reasoning="look first", tool_calls=[ToolCall("bash", {"command": "echo hi"})]),
            Reply(content="done"),
        )
        proc = run_cli(["-p", "-y", "go"], home=home, cwd=workspace, base_url=server.base_url)
        assert proc.returncode == 0, proc.stderr
        after_tool = [r for r in server.chat_requests if r.tool_results()]
    def carries_reasoning(request: object) -> bool:
        return any("reasoning_content" in m for m in request.messages)  # type: ignore[attr-defined]

    assert after_tool[0].status == 400 and carries_reasoning(after_tool[0])
    assert after_tool[-1].status == 200 and not carries_reasoning(after_tool[-1])
    assert proc.stdout.strip() == "done"


def test_an_error_that_only_mentions_a_field_is_not_a_refusal() -> None:
    body = {"error": {"message": "temperature must be between 0 and 2", "type": "invalid_request_error"}}
    assert rejected_fields(400, body, ["temperature", "top_p"]) == []
    overflow = OVERFLOW["vllm"].body  # names max_tokens, but is about the window
    assert rejected_fields(400, overflow, ["max_tokens", "max_completion_tokens"]) == []
    assert rejected_fields(500, rejection("openai", ["thinking"])[1], ["thinking"]) == []


@pytest.mark.parametrize("style", STRICT_STYLES)
def test_every_strict_wording_names_its_fields(style: str) -> None:
    status, body = rejection(style, ["thinking", "prompt_cache_key"])
    named = rejected_fields(status, body, ["thinking", "prompt_cache_key", "temperature", "stream_options"])
    assert named and set(named) <= {"thinking", "prompt_cache_key"}


def test_a_corrupt_endpoints_file_costs_one_line_and_is_rewritten(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    home.mkdir(parents=True)
    (home / "endpoints.json").write_text("{not json", encoding="utf-8")
    fake_llm.script(Reply(content="still works"))
    proc = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0 and proc.stdout.strip() == "still works"
    complaints = [line for line in proc.stderr.splitlines() if "endpoints.json" in line]
    assert len(complaints) == 1 and "not valid JSON" in complaints[0] and "Traceback" not in proc.stderr
    assert fake_llm.base_url in json.loads((home / "endpoints.json").read_text())["endpoints"]


def test_the_store_keeps_other_endpoints_and_writes_atomically(tmp_path: Path) -> None:
    store = EndpointStore(tmp_path)
    one, two = store.load("http://a:1/v1/"), store.load("http://b:2/v1")
    one.reject("thinking")
    two.learn_window("m", 4096)
    store.save(one)
    store.save(two)
    table = json.loads((tmp_path / "endpoints.json").read_text())["endpoints"]
    assert table["http://a:1/v1"]["rejected"] == ["thinking"] and table["http://b:2/v1"]["windows"] == {"m": 4096}
    assert not list(tmp_path.glob(".endpoints.*"))  # no temp file left behind
    assert EndpointStore(tmp_path).load("http://a:1/v1").rejected == {"thinking"}


# -- context overflow, as each vendor says it ----------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(OVERFLOW))
def test_each_vendors_overflow_is_recognised_and_its_window_read(vendor: str) -> None:
    answer = OVERFLOW[vendor]
    overflow = context_overflow(answer.body)
    assert overflow is not None, error_text(answer.body)
    assert overflow.limit == answer.window


# "vllm" is the reply room, not the prompt, over the window: no summary is needed (the test below).
@pytest.mark.parametrize("vendor", sorted(set(OVERFLOW) - {"vllm"}))
def test_each_vendors_overflow_compacts_and_retries_through_the_cli(vendor: str, home: Path, workspace: Path) -> None:
    with FakeLLM() as server:
        server.script(
            Reply(tool_calls=[ToolCall("bash", {"command": big_output("early ")})]),
            Reply(tool_calls=[ToolCall("bash", {"command": "echo latest"})]),
            Reply(fault=Fault.context_overflow(vendor)),
            Reply(content="SUMMARY-AFTER-OVERFLOW"),
            Reply(content="recovered"),
        )
        proc = run_cli(["-p", "-y", "task"], home=home, cwd=workspace, base_url=server.base_url)
        assert proc.returncode == 0, proc.stderr
        final = json.dumps(server.chat_requests[-1].messages)
    assert proc.stdout.strip() == "recovered"
    assert "compacted" in proc.stderr and "retrying" not in proc.stderr  # recognised at once, not retried
    assert "SUMMARY-AFTER-OVERFLOW" in final and "early early" not in final


def test_a_stated_window_is_learned_and_sizes_the_next_request(home: Path, workspace: Path) -> None:
    """vLLM refuses room for the reply the window lacks: kimicode asks again within the stated window,
    without summarising, and the next run starts from that window."""
    with FakeLLM(model="my-model", models_style="openai") as server:
        server.script(Reply(fault=Fault.context_overflow("vllm")), Reply(content="fits now"), Reply(content="next"))
        proc = run_cli(["-p", "-m", "my-model", "hi"], home=home, cwd=workspace, base_url=server.base_url)
        assert proc.returncode == 0, proc.stderr
        refused, answered = server.chat_requests
        assert refused.body["max_tokens"] > 32768 - 3059
        assert answered.body["max_tokens"] <= 32768 - 3059
        assert "compacted" not in proc.stderr
        again = run_cli(["-p", "-m", "my-model", "hi"], home=home, cwd=workspace, base_url=server.base_url)
        assert again.returncode == 0, again.stderr
        assert server.chat_requests[-1].body["max_tokens"] <= 32768
    assert json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]["windows"] == {"my-model": 32768}


def test_a_window_from_models_triggers_compaction_before_the_endpoint_refuses(home: Path, workspace: Path) -> None:
    with FakeLLM(model="small", models_style="vllm", context_window=12000) as server:
        server.script(
            *[Reply(tool_calls=[ToolCall("bash", {"command": big_output(word)})]) for word in ("one ", "two ", "six ")],
            Reply(content="SUMMARY-BY-WINDOW"),
            Reply(content="done"),
        )
        proc = run_cli(["-p", "-y", "-m", "small", "go"], home=home, cwd=workspace, base_url=server.base_url)
        assert proc.returncode == 0, proc.stderr
        statuses = [r.status for r in server.chat_requests]
    assert "compacted" in proc.stderr and proc.stdout.strip() == "done"
    assert statuses == [200] * 5  # compacted on its own: the server never had to refuse


# -- connections are closed ----------------------------------------------------------------------------


def test_a_headless_run_leaves_no_unclosed_transport(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "echo hi"})]), Reply(content="done"))
    proc = run_cli(
        ["-p", "-y", "go"], home=home, cwd=workspace, base_url=fake_llm.base_url,
        env_extra={"PYTHONWARNINGS": "always::ResourceWarning", "PYTHONTRACEMALLOC": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "ResourceWarning" not in proc.stderr and "unclosed" not in proc.stderr


def test_the_warning_detection_sees_an_unclosed_client(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """The check above can fail: a client left open is reported under the same settings."""
    import subprocess
    import sys

    script = tmp_path / "leak.py"
    script.write_text(
        "import asyncio\nfrom openai import AsyncOpenAI\n"
        "async def main():\n"
        f"    c = AsyncOpenAI(api_key='k', base_url='{fake_llm.base_url}')\n"
        "    await c.models.list()\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env={**__import__("os").environ, "PYTHONWARNINGS": "always::ResourceWarning"},
    )
    assert "unclosed" in proc.stderr


def test_write_home_config_keeps_thinking_style_valid(home: Path, workspace: Path, fake_llm: FakeLLM) -> None:
    write_home_config(home, 'thinking_style = "sometimes"\n')
    proc = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 2 and "thinking_style must be one of auto" in proc.stderr


def test_switching_models_in_the_repl_leaves_no_unclosed_transport(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    from tests.replpty import Repl

    fake_llm.script(Reply(content="answer one"), Reply(content="answer two"), Reply(content="answer three"))
    fake_llm.extra_models = [("kimi-k2-thinking", None)]  # /model refuses a model the endpoint does not list
    repl = Repl(home, workspace, fake_llm.base_url, env={"PYTHONWARNINGS": "always::ResourceWarning"})
    try:
        for number, model in (("one", "kimi-k2-thinking"), ("two", "kimi-k2.5"), ("three", "")):
            repl.wait_prompt()
            repl.send_line("hi")
            repl.expect(f"answer {number}")
            if model:
                repl.wait_prompt()
                repl.send_line(f"/model {model}")
                repl.expect(f"model: {model}")
        repl.wait_prompt()
        repl.send_line("/exit")
        assert repl.wait_exit() == 0
    finally:
        repl.close()
    assert [r.body["model"] for r in fake_llm.chat_requests] == ["kimi-k2.5", "kimi-k2-thinking", "kimi-k2.5"]
    assert "ResourceWarning" not in repl.transcript and "unclosed" not in repl.transcript


def test_requests_in_flight_together_all_recover_from_one_refusal(tmp_path: Path) -> None:
    """A swarm's sub-agents share the endpoint profile: each request refused before the lesson was learned
    is sent again, not failed."""
    import asyncio

    with FakeLLM(strict="openai") as server:
        server.responder = lambda request: Reply(content="ok", delay=0.2)
        store = EndpointStore(tmp_path)
        config = Config(base_url=server.base_url, api_key="k", home=tmp_path, model="kimi-k2.5")
        endpoint = store.load(server.base_url)

        async def together() -> list[str]:
            client = ChatClient(config, profile_for("kimi-k2.5"), endpoint, store)
            try:
                replies = await asyncio.gather(
                    *[client.complete([{"role": "user", "content": f"q{n}"}], [], thinking=True, session_id="s")
                      for n in range(4)]
                )
            finally:
                await client.aclose()
            return [reply.content for reply in replies]

        assert asyncio.run(together()) == ["ok"] * 4
        refused = [r for r in server.chat_requests if r.status == 400]
    assert len(refused) >= 2  # they really were in flight together


# -- a model that takes no images ------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(IMAGE_REFUSAL))
def test_each_vendors_refusal_of_images_is_recognised(vendor: str) -> None:
    _, body = IMAGE_REFUSAL[vendor]
    assert images_refused(body)


def test_other_errors_are_not_taken_for_a_refusal_of_images() -> None:
    others = [answer.body for answer in OVERFLOW.values()]
    others += [rejection(style, ["thinking"])[1] for style in STRICT_STYLES]
    others += [{"error": {"message": "image too large: 40 MB, at most 20 MB", "type": "invalid_request_error"}}]
    assert not any(images_refused(body) for body in others)


def _photo(folder: Path) -> Path:
    from PIL import Image as PILImage

    photo = folder / "photo.png"
    PILImage.new("RGB", (64, 48), (200, 30, 30)).save(photo)
    return photo


@pytest.mark.parametrize("vendor", ["llama.cpp", "llama.cpp-500", "vllm", "openai"])
def test_images_a_text_only_model_refuses_are_left_out_once_and_from_then_on(
    vendor: str, home: Path, workspace: Path
) -> None:
    # A llama.cpp server started without its projector, vLLM serving a text-only model: the run goes on
    # without the image (the model is told it was not sent), and later runs neither send images nor offer
    # the screenshot tool to that model there.
    photo = _photo(workspace)
    with FakeLLM(text_only=vendor, models_style="llama.cpp") as server:
        server.script(Reply(content="I cannot see it"), Reply(content="hello"))
        first = run_cli(["-p", "--image", str(photo), "what is this?"], home=home, cwd=workspace, base_url=server.base_url)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == "I cannot see it"
        assert server.image_refusals == 1
        assert "takes no images" in first.stderr
        answered = [r for r in server.chat_requests if r.status == 200]
        assert len(answered) == 1
        sent = json.dumps(answered[0].messages)
        assert "image_url" not in sent and "[image not sent: this model takes no images at this endpoint]" in sent
        assert "what is this?" in sent

        again = run_cli(["-p", "--image", str(photo), "and now?"], home=home, cwd=workspace, base_url=server.base_url)
        assert again.returncode == 2
        assert "refused images before" in again.stderr and "endpoints.json" in again.stderr
        requests_before = len(server.chat_requests)

        plain = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=server.base_url)
        assert plain.returncode == 0, plain.stderr
        [request] = server.chat_requests[requests_before:]
        assert "screenshot" not in request.tool_names()
        assert server.image_refusals == 1
    saved = json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]
    assert saved["no_images"] == ["kimi-k2.5"]
