"""The scripted model server, driven by the real openai SDK and by raw http.client."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fake_llm import SCRIPT_EXHAUSTED, FakeLLM, Fault, RecordedRequest, Reply, ToolCall

USER = [{"role": "user", "content": "hi"}]


_open_clients: list[Any] = []


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    yield
    while _open_clients:
        _open_clients.pop().close()


def sdk(server: FakeLLM, api_key: str = "sk-test") -> Any:
    from openai import OpenAI

    client = OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0)
    _open_clients.append(client)
    return client


def async_sdk(server: FakeLLM) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def stream_chunks(server: FakeLLM, **extra: Any) -> list[Any]:
    stream = sdk(server).chat.completions.create(model="kimi-k2.5", messages=USER, stream=True, **extra)
    return list(stream)


def raw_post(
    server: FakeLLM | str,
    path: str,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[http.client.HTTPResponse, bytes]:
    url = urlsplit(server if isinstance(server, str) else server.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
    all_headers.update(headers or {})
    connection.request("POST", url.path + path, body=data, headers=all_headers)
    response = connection.getresponse()
    try:
        return response, response.read()
    finally:
        connection.close()


def sse_data_lines(payload: bytes) -> list[str]:
    return [line[len("data: ") :] for line in payload.decode().split("\n\n") if line.startswith("data: ")]


# ---- streaming ---------------------------------------------------------------------------------------------


def test_streamed_text_assembles_from_several_deltas(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="Hello, streaming world!", chunk_size=5))
    chunks = stream_chunks(fake_llm)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == "Hello, streaming world!"
    assert len(deltas) == 5
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_reasoning_content_arrives_before_content(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(reasoning="Let me think about it.", content="42"))
    chunks = stream_chunks(fake_llm)
    kinds = []
    reasoning = ""
    for chunk in chunks:
        delta = chunk.choices[0].delta
        piece = getattr(delta, "reasoning_content", None)
        if piece:
            reasoning += piece
            kinds.append("reasoning")
        if delta.content:
            kinds.append("content")
    assert reasoning == "Let me think about it."
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning")


def test_tool_call_arguments_split_across_chunks_reassemble(fake_llm: FakeLLM) -> None:
    arguments = {"command": "ls -la /tmp && echo done", "timeout": 30}
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", arguments), ToolCall("view", {"path": "README.md"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "pwd"})]),
    )
    chunks = stream_chunks(fake_llm)
    calls: dict[int, dict[str, Any]] = {}
    argument_deltas = 0
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            if delta.id:
                call["id"] = delta.id
                call["name"] = delta.function.name
                assert delta.type == "function"
            elif delta.function.arguments:
                argument_deltas += 1
            call["arguments"] += delta.function.arguments or ""
    assert json.loads(calls[0]["arguments"]) == arguments
    assert json.loads(calls[1]["arguments"]) == {"path": "README.md"}
    assert (calls[0]["id"], calls[0]["name"], calls[1]["id"]) == ("bash:0", "bash", "view:1")
    assert argument_deltas >= 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    next_call = [d for c in stream_chunks(fake_llm) for d in c.choices[0].delta.tool_calls or [] if d.id]
    assert next_call[0].id == "bash:2"  # ids stay unique across the server's life


def test_explicit_tool_call_id_and_raw_string_arguments_are_sent_verbatim(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", '{"command": "ls"', id="call_abc")]))
    response = sdk(fake_llm).chat.completions.create(model="kimi-k2.5", messages=USER)
    call = response.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_abc", "bash", '{"command": "ls"')


def test_sse_framing_is_chunked_and_ends_with_done(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="abc"))
    response, payload = raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER, "stream": True})
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Type").startswith("text/event-stream")
    assert payload.endswith(b"data: [DONE]\n\n")
    lines = sse_data_lines(payload)
    assert json.loads(lines[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert json.loads(lines[0])["model"] == "m"  # the requested model is echoed
    assert all(json.loads(line)["object"] == "chat.completion.chunk" for line in lines[:-1])


# ---- usage -------------------------------------------------------------------------------------------------


def test_moonshot_usage_sits_in_final_choice_and_top_level_when_asked(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="x" * 40), Reply(content="x" * 40), Reply(usage={"prompt_tokens": 900, "cached_tokens": 800}))
    response, payload = raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER, "stream": True})
    chunks = [json.loads(line) for line in sse_data_lines(payload)[:-1]]
    in_choice = chunks[-1]["choices"][0]["usage"]
    assert in_choice["completion_tokens"] == 10
    assert in_choice["prompt_tokens"] == len(fake_llm.requests[0].raw) // 4
    assert in_choice["total_tokens"] == in_choice["prompt_tokens"] + 10
    assert all("usage" not in c for c in chunks)  # no top-level usage unless include_usage

    chunks = stream_chunks(fake_llm, stream_options={"include_usage": True})
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 0
    assert chunks[-2].choices[0].model_extra["usage"]["completion_tokens"] == 10

    cached = stream_chunks(fake_llm)[-1].choices[0].model_extra["usage"]
    assert (cached["prompt_tokens"], cached["cached_tokens"], cached["prompt_tokens_details"]) == (
        900,
        800,
        {"cached_tokens": 800},
    )
    assert cached["total_tokens"] == 900 + cached["completion_tokens"]


def test_openai_usage_only_top_level_and_only_when_asked() -> None:
    with FakeLLM(usage_style="openai") as server:
        server.script(Reply(content="hello"), Reply(content="hello", usage={"prompt_tokens": 7, "completion_tokens": 3}))
        plain = stream_chunks(server)
        assert all(c.usage is None and "usage" not in (c.choices[0].model_extra or {}) for c in plain)
        with_usage = stream_chunks(server, stream_options={"include_usage": True})
        assert with_usage[-1].choices == []
        assert with_usage[-1].usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == {
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "total_tokens": 10,
        }
        assert "usage" not in (with_usage[-2].choices[0].model_extra or {})


def test_non_streaming_completion_carries_message_and_usage(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Reply(content="Running it.", reasoning="need ls", tool_calls=[ToolCall("bash", {"command": "ls"})])
    )
    response = sdk(fake_llm).chat.completions.create(model="kimi-k2.5", messages=USER)
    choice = response.choices[0]
    assert response.object == "chat.completion"
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Running it."
    assert choice.message.model_extra["reasoning_content"] == "need ls"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"command": "ls"}
    assert response.usage.prompt_tokens == len(fake_llm.requests[0].raw) // 4
    assert response.usage.prompt_tokens_details.cached_tokens == 0


# ---- faults ------------------------------------------------------------------------------------------------


def test_rate_limit_fault_is_429_with_retry_after_and_moonshot_body(fake_llm: FakeLLM) -> None:
    import openai

    fake_llm.script(Reply(content="never", fault=Fault.rate_limit(retry_after=2)))
    with pytest.raises(openai.RateLimitError) as caught:
        stream_chunks(fake_llm)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body["type"] == "rate_limit_reached_error"
    assert fake_llm.requests[0].status == 429


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "words"),
    [
        (Fault.overloaded(), 429, "engine_overloaded_error", "overloaded"),
        (Fault.auth(), 401, "invalid_authentication_error", "Invalid Authentication"),
        (Fault.token_limit(), 400, "invalid_request_error", "exceeded model token limit"),
        (Fault.http(503, "upstream down", retry_after=0.5), 503, "server_error", "upstream down"),
    ],
)
def test_http_faults_answer_status_type_and_message(
    fake_llm: FakeLLM, fault: Fault, status: int, error_type: str, words: str
) -> None:
    fake_llm.script(Reply(fault=fault))
    response, payload = raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER, "stream": True})
    error = json.loads(payload)["error"]
    assert response.status == status
    assert error["type"] == error_type and words in error["message"]
    assert response.getheader("Retry-After") == ("0.5" if status == 503 else None)


def test_http_fault_maps_to_sdk_error_class(fake_llm: FakeLLM) -> None:
    import openai

    fake_llm.script(Reply(fault=Fault.auth()), Reply(fault=Fault.token_limit()))
    with pytest.raises(openai.AuthenticationError):
        stream_chunks(fake_llm)
    with pytest.raises(openai.BadRequestError, match="exceeded model token limit"):
        sdk(fake_llm).chat.completions.create(model="kimi-k2.5", messages=USER)


def test_drop_mid_stream_cuts_connection_after_some_chunks(fake_llm: FakeLLM) -> None:
    import openai

    fake_llm.script(Reply(content="a long answer that never finishes", chunk_size=3, fault=Fault.drop_mid_stream(3)))
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in sdk(fake_llm).chat.completions.create(model="kimi-k2.5", messages=USER, stream=True):
            received.append(chunk)
    assert len(received) == 3
    assert all(c.choices[0].finish_reason is None for c in received)


def test_drop_mid_stream_sends_no_terminating_chunk(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="abcdefghijkl", chunk_size=2, fault=Fault.drop_mid_stream(2)))
    with pytest.raises(http.client.IncompleteRead) as caught:
        raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER, "stream": True})
    partial = caught.value.partial
    assert len(sse_data_lines(partial)) == 2 and b"[DONE]" not in partial


def test_truncated_tool_args_end_the_stream_normally(fake_llm: FakeLLM) -> None:
    full = json.dumps({"path": "src/app.py", "content": "print('hello')\n" * 4})
    fake_llm.script(Reply(tool_calls=[ToolCall("createfile", full)], fault=Fault.truncated_tool_args()))
    response, payload = raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER, "stream": True})
    assert response.status == 200 and payload.endswith(b"data: [DONE]\n\n")
    chunks = [json.loads(line) for line in sse_data_lines(payload)[:-1]]
    sent = "".join(
        call["function"].get("arguments", "") for c in chunks for call in c["choices"][0]["delta"].get("tool_calls", [])
    )
    assert full.startswith(sent) and len(sent) < len(full)
    with pytest.raises(ValueError):
        json.loads(sent)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_malformed_chunk_is_one_bad_data_line_among_good_ones(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="fine text", fault=Fault.malformed_chunk()), Reply(content="x", fault=Fault.malformed_chunk()))
    response, payload = raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER, "stream": True})
    lines = sse_data_lines(payload)
    bad = []
    for line in lines[:-1]:
        try:
            json.loads(line)
        except ValueError:
            bad.append(line)
    assert len(bad) == 1 and lines[-1] == "[DONE]"
    good = [json.loads(line) for line in lines[:-1] if line not in bad]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in good) == "fine text"
    with pytest.raises(ValueError):  # the SDK's SSE decoder chokes on it
        stream_chunks(fake_llm)


def test_hang_answers_nothing_until_the_server_closes() -> None:
    server = FakeLLM()
    server.script(Reply(content="never", fault=Fault.hang()))
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(raw_post(server, "/chat/completions", {"model": "m", "messages": USER}, timeout=30))
        except Exception as error:  # the connection is cut when the server closes
            outcome.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    assert server.wait_for_requests(1)
    assert server.in_flight == 1 and server.requests[0].status is None
    server.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], (http.client.HTTPException, ConnectionError))


def test_exhausted_script_answers_500_with_clear_message(fake_llm: FakeLLM) -> None:
    import openai

    with pytest.raises(openai.InternalServerError, match=SCRIPT_EXHAUSTED):
        stream_chunks(fake_llm)
    assert fake_llm.requests[0].status == 500 and fake_llm.remaining == 0


def test_responder_error_is_a_500_naming_it(fake_llm: FakeLLM) -> None:
    def responder(request: RecordedRequest) -> Reply:
        raise LookupError("no reply for this task")

    fake_llm.responder = responder
    response, payload = raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER})
    assert response.status == 500 and "no reply for this task" in json.loads(payload)["error"]["message"]


# ---- concurrency and responder -----------------------------------------------------------------------------


def test_responder_chooses_reply_from_the_request(fake_llm: FakeLLM) -> None:
    fake_llm.responder = lambda request: Reply(content="echo: " + request.last_user_text(), delay=0.05)

    async def ask_all(tasks: list[str]) -> list[str]:
        async with async_sdk(fake_llm) as client:

            async def ask(task: str) -> str:
                response = await client.chat.completions.create(
                    model="kimi-k2.5", messages=[{"role": "user", "content": task}], stream=False
                )
                return response.choices[0].message.content

            return list(await asyncio.gather(*(ask(t) for t in tasks)))

    tasks = [f"task number {i}" for i in range(12)]
    answers = asyncio.run(ask_all(tasks))
    assert answers == [f"echo: {t}" for t in tasks]
    fake_llm.responder = None
    fake_llm.script(Reply(content="from the queue"))
    assert sdk(fake_llm).chat.completions.create(model="m", messages=USER).choices[0].message.content == "from the queue"


def test_thirty_concurrent_sdk_requests_are_all_in_flight_at_once(fake_llm: FakeLLM) -> None:
    all_arrived = threading.Barrier(30, timeout=60)  # each reply waits for the 30th request
    replies = iter(range(30))

    def responder(request: RecordedRequest) -> Reply:
        number = next(replies)
        all_arrived.wait()
        return Reply(content=f"r{number}")

    fake_llm.responder = responder

    async def thirty_at_once() -> list[str]:
        async with async_sdk(fake_llm) as client:

            async def one() -> str:
                stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            return list(await asyncio.gather(*(one() for _ in range(30))))

    answers = asyncio.run(thirty_at_once())
    assert sorted(answers) == sorted(f"r{i}" for i in range(30))
    assert fake_llm.max_in_flight >= 30


def test_a_hundred_concurrent_raw_requests_are_served(fake_llm: FakeLLM) -> None:
    all_arrived = threading.Barrier(100, timeout=60)  # each reply waits for the 100th request: all in flight at once

    def responder(request: RecordedRequest) -> Reply:
        all_arrived.wait()
        return Reply(content=request.last_user_text().upper())

    fake_llm.responder = responder
    results: dict[int, str] = {}

    def call(i: int) -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": f"job {i}"}], "stream": True}
        _, payload = raw_post(fake_llm, "/chat/completions", body)
        chunks = [json.loads(line) for line in sse_data_lines(payload)[:-1]]
        results[i] = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: f"JOB {i}" for i in range(100)}
    assert fake_llm.max_in_flight >= 100


def test_keep_alive_connection_serves_several_requests(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="one"), Reply(content="two"))
    url = urlsplit(fake_llm.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    contents = []
    for _ in range(2):
        body = json.dumps({"model": "m", "messages": USER, "stream": True}).encode()
        connection.request("POST", "/v1/chat/completions", body=body, headers={"Authorization": "Bearer k"})
        payload = connection.getresponse().read()
        chunks = [json.loads(line) for line in sse_data_lines(payload)[:-1]]
        contents.append("".join(c["choices"][0]["delta"].get("content") or "" for c in chunks))
    connection.close()
    assert contents == ["one", "two"]


# ---- other endpoints, auth, recording ----------------------------------------------------------------------


def test_auth_header_required_and_key_checked_when_set() -> None:
    import openai

    with FakeLLM(api_key="sk-right") as server:
        server.script(Reply(content="ok"))
        response, payload = raw_post(server, "/chat/completions", {"messages": USER}, headers={"Authorization": ""})
        assert response.status == 401
        assert json.loads(payload)["error"]["type"] == "invalid_authentication_error"
        with pytest.raises(openai.AuthenticationError):
            sdk(server, api_key="sk-wrong").chat.completions.create(model="m", messages=USER)
        assert sdk(server, api_key="sk-right").chat.completions.create(model="m", messages=USER).choices[0].message.content == "ok"
        assert [r.status for r in server.requests] == [401, 401, 200]


def test_models_lists_the_configured_model() -> None:
    with FakeLLM(model="kimi-test-model") as server:
        assert [m.id for m in sdk(server).models.list()] == ["kimi-test-model"]


def test_file_upload_stores_exact_bytes(fake_llm: FakeLLM, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    data = bytes(range(256)) * 10 + b"\r\n--boundary-like\r\n\r\n" + b"\x00\xff"
    video.write_bytes(data)
    with video.open("rb") as handle:
        uploaded = sdk(fake_llm).files.create(file=handle, purpose="video")  # type: ignore[arg-type]
    assert uploaded.id.startswith("file-") and uploaded.bytes == len(data)
    stored = fake_llm.files[uploaded.id]
    assert (stored.data, stored.filename, stored.purpose) == (data, "clip.mp4", "video")
    assert sdk(fake_llm).files.retrieve(uploaded.id).filename == "clip.mp4"
    assert sdk(fake_llm).files.delete(uploaded.id).deleted is True
    assert uploaded.id not in fake_llm.files


def test_token_estimate_and_unknown_path(fake_llm: FakeLLM) -> None:
    body = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "x" * 400}]}
    response, payload = raw_post(fake_llm, "/tokenizers/estimate-token-count", body)
    assert response.status == 200
    assert json.loads(payload) == {"data": {"total_tokens": len(json.dumps(body)) // 4}}
    response, payload = raw_post(fake_llm, "/no/such/thing", {})
    assert response.status == 404 and "no route" in json.loads(payload)["error"]["message"]
    assert [r.path for r in fake_llm.all_requests] == ["/v1/tokenizers/estimate-token-count", "/v1/no/such/thing"]


def test_recorded_request_helpers(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="ok"))
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "bash:0", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "bash:0", "content": "exit 0"},
        {"role": "user", "content": [{"type": "text", "text": "look at"}, {"type": "image_url", "image_url": {"url": "data:,"}}, {"type": "text", "text": "this"}]},
    ]
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("bash", "view")]
    sdk(fake_llm).chat.completions.create(model="kimi-k2.5", messages=messages, tools=tools)
    request = fake_llm.requests[0]
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "kimi-k2.5" and json.loads(request.raw) == request.body
    assert request.messages == messages
    assert request.last_user_text() == "look at\nthis"
    assert request.tool_results() == [messages[3]]
    assert request.tool_names() == ["bash", "view"]


def test_standalone_entry_point_serves_a_json_script(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                {"reasoning": "hm", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
                {"content": "done", "fault": {"kind": "rate_limit", "retry_after": 3}},
            ]
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_llm", "--port", "0", "--script", str(script), "--quiet"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        response, payload = raw_post(base_url, "/chat/completions", {"model": "m", "messages": USER})
        assert json.loads(payload)["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "bash"
        response, payload = raw_post(base_url, "/chat/completions", {"model": "m", "messages": USER})
        assert response.status == 429 and response.getheader("Retry-After") == "3"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_stall_sends_the_first_chunk_then_nothing(fake_llm: FakeLLM) -> None:
    import socket

    fake_llm.script(Reply(content="abcdefgh", chunk_size=2, fault=Fault.stall(after_chunks=1)))
    url = urlsplit(fake_llm.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=1.0)
    body = json.dumps({"model": "m", "messages": USER, "stream": True})
    connection.request("POST", url.path + "/chat/completions", body=body, headers={"Authorization": "Bearer k"})
    response = connection.getresponse()
    assert response.status == 200
    first = response.read1()  # the role chunk arrives
    assert sse_data_lines(first) and b"[DONE]" not in first
    with pytest.raises((socket.timeout, TimeoutError)):
        response.read1()  # then nothing
    connection.close()


def test_trickle_sends_keep_alive_comments_the_sdk_ignores(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="slow but whole", fault=Fault.trickle(interval=0.1, duration=0.5)))
    response, payload = raw_post(fake_llm, "/chat/completions", {"model": "m", "messages": USER, "stream": True})
    assert payload.count(b": keep-alive\n\n") >= 3
    assert payload.endswith(b"data: [DONE]\n\n")
    fake_llm.script(Reply(content="slow but whole", fault=Fault.trickle(interval=0.1, duration=0.3)))
    text = "".join(c.choices[0].delta.content or "" for c in stream_chunks(fake_llm) if c.choices)
    assert text == "slow but whole"


def test_trickle_keeps_sending_bytes_until_the_client_gives_up(fake_llm: FakeLLM) -> None:
    import socket
    import time

    fake_llm.script(Reply(content="never", fault=Fault.trickle(interval=0.2)))
    url = urlsplit(fake_llm.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=1.0)
    body = json.dumps({"model": "m", "messages": USER, "stream": True})
    connection.request("POST", url.path + "/chat/completions", body=body, headers={"Authorization": "Bearer k"})
    response = connection.getresponse()
    started = time.monotonic()
    received = b""
    while time.monotonic() - started < 1.5:
        try:
            received += response.read1()
        except (socket.timeout, TimeoutError):
            pytest.fail("the trickle stopped sending bytes")
    assert received.count(b": keep-alive") >= 4 and b"[DONE]" not in received
    connection.close()


def test_empty_and_length_replies_are_well_formed(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(), Reply(content="cut here", finish_reason="length"))
    chunks = stream_chunks(fake_llm)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    chunks = stream_chunks(fake_llm)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


@pytest.mark.parametrize("renames", [False, True], ids=["direct", "behind-a-renaming-proxy"])
def test_the_competent_model_answers_from_a_result_only_under_its_own_call_id(renames: bool) -> None:
    from tests.fake_llm import CompetentModel
    from tests.fake_llm.competent import UNMATCHED_RESULT

    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    question = [{"role": "user", "content": "What is the weather in Lima? Use the get_weather tool."}]
    with FakeLLM(renames_tool_call_ids=renames) as server:
        server.responder = CompetentModel()
        client = sdk(server)
        first = client.chat.completions.create(model="kimi-k2.5", messages=question, tools=[tool])
        call = first.choices[0].message.tool_calls[0]
        history = [
            *question,
            {"role": "assistant", "content": "", "tool_calls": [call.model_dump(exclude_none=True)]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 31, "sky": "clear"}'},
        ]
        second = client.chat.completions.create(model="kimi-k2.5", messages=history, tools=[tool])
        sent_back = server.requests[-1].messages
    # the ids reach the model exactly as the client sent them: the proxy maps nothing back
    assert sent_back[-1]["tool_call_id"] == call.id
    if renames:
        assert call.id.startswith("call_") and second.choices[0].message.content == UNMATCHED_RESULT
    else:
        assert call.id == "functions.get_weather:0" and "31 °C" in second.choices[0].message.content


def test_requests_record_when_they_arrived_and_when_their_answer_ended(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="one"), Reply(content="two"))
    client = sdk(fake_llm)
    before = time.perf_counter()
    for _ in range(2):
        list(client.chat.completions.create(model="kimi-k2.5", messages=USER, stream=True))
    # (the SDK stops reading at [DONE]: the server may note the end of its answer after the client moved on)
    assert fake_llm.wait_for_answers(2)
    after = time.perf_counter()
    first, second = fake_llm.requests
    # The gap a client leaves between an answer and its next request is second.received - first.answered.
    assert before <= first.received <= first.answered <= second.received <= second.answered <= after
