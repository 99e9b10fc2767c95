"""What the terminal shows (tmux's screen, read back): a long paragraph grows as it streams, tables are
drawn as tables, and no terminal reply is ever echoed into the transcript."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import PROMPT_READY
from tests.tmuxscreen import TmuxRepl

pytestmark = pytest.mark.quick_retries

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
# What a terminal answers to a query (cursor position, device attributes, kitty flags, OSC colours), as
# the tty echoes it when nobody reads it: ``^[[16;9R``, ``^[[?1;2c``, ``^[[?1u``, ``^[]11;rgb:…``.
ECHOED_REPLY = re.compile(r"\^\[(\[[\d;?]*[Rcu]|\]\d+;)")


def paragraph(length: int) -> str:
    words: list[str] = []
    index = 0
    while len(" ".join(words)) < length:
        words.append(WORDS[index % len(WORDS)])
        index += 1
    return " ".join(words)


@pytest.fixture
def tmux(home: Path, workspace: Path, fake_llm: FakeLLM) -> Iterator[TmuxRepl]:
    repl = TmuxRepl(home, workspace, fake_llm.base_url, columns=80, lines=30)
    try:
        yield repl
    finally:
        repl.close()


def visible_prefix(rows: list[str], text: str) -> int:
    """How much of ``text`` (from its start) the screen shows, rows joined as the words flow."""
    screen = " ".join(" ".join(rows).split())
    low, high = 0, len(text)
    while low < high:  # a shown prefix's own prefixes are shown too: search for the longest
        middle = (low + high + 1) // 2
        if text[:middle].rstrip() in screen:
            low = middle
        else:
            high = middle - 1
    return low


def test_a_wide_paragraph_keeps_growing_as_it_streams(tmux: TmuxRepl, fake_llm: FakeLLM) -> None:
    text = paragraph(400)
    held = 0.2  # each chunk stands for 200 ms of stream time; the server sends it when the test says so
    permits, released = threading.Semaphore(0), threading.Event()
    original = fake_llm._pause

    def pause(seconds: float) -> None:
        if seconds != held:
            original(seconds)
            return
        while not released.is_set() and not permits.acquire(timeout=0.05):
            pass

    fake_llm._pause = pause  # type: ignore[method-assign]
    fake_llm.script(Reply(content=text, chunk_size=10, chunk_delay=held))
    tmux.wait_for(lambda rows: bool(PROMPT_READY.search("\n".join(rows))), what="the prompt")
    tmux.type("tell me")
    tmux.key("Enter")
    shown, steps = 0, 0
    try:
        while shown < len(text.rstrip()):
            permits.release()  # one more chunk: the screen must show more of the paragraph
            rows = tmux.wait_for(
                lambda rows, shown=shown: visible_prefix(rows, text) > shown, timeout=10, what=f"more than {shown} characters"
            )
            shown = visible_prefix(rows, text)
            steps += 1
    finally:
        released.set()
    assert steps >= 30  # 40 chunks of 10 characters; a few may land together
    rows = tmux.wait_for(lambda rows: bool(PROMPT_READY.search("\n".join(rows))), what="the prompt again")
    words = set(WORDS)
    answer_rows = [row for row in rows if any(token in words for token in row.split())]
    assert len(answer_rows) >= 5
    for row in answer_rows:  # wrapped at spaces: no row starts or ends inside a word
        assert all(token in words for token in row.split()), row
        assert len(row.rstrip()) <= 80
    assert not ECHOED_REPLY.search(tmux.history())  # the prompt redrew below streamed text 40 times


def test_a_markdown_table_is_drawn_as_a_table(tmux: TmuxRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Reply(content="Results:\n\n| name | score |\n|------|------:|\n| alpha | 10 |\n| bravo | 7 |\n\nThat is all.")
    )
    tmux.wait_for(lambda rows: bool(PROMPT_READY.search("\n".join(rows))), what="the prompt")
    tmux.type("compare")
    tmux.key("Enter")
    rows = tmux.wait_text("That is all.")
    screen = "\n".join(rows)
    assert "|------|" not in screen and "| alpha |" not in screen
    assert re.search(r"│ name\s+│\s+score │", screen), screen
    assert re.search(r"│ alpha\s+│\s+10 │", screen), screen  # right-aligned, as the rule's colon asks
    assert "╭" in screen and "╰" in screen
    rows = tmux.wait_for(lambda rows: bool(PROMPT_READY.search("\n".join(rows))), what="the prompt again")
    bottom = next(row for row in rows if PROMPT_READY.search(row))
    assert "$" not in bottom  # the scripted endpoint's prices are not known: tokens only


def test_twenty_approvals_leave_no_terminal_reply_on_screen(
    tmux: TmuxRepl, fake_llm: FakeLLM, workspace: Path
) -> None:
    count = 20
    calls = [Reply(tool_calls=[ToolCall("bash", {"command": f"touch made{n}.txt"})]) for n in range(count)]
    fake_llm.script(*calls, Reply(content="All twenty made"))
    tmux.wait_for(lambda rows: bool(PROMPT_READY.search("\n".join(rows))), what="the prompt")
    tmux.type("make twenty files")
    tmux.key("Enter")
    for n in range(count):
        tmux.wait_text(f"touch made{n}.txt — ")
        tmux.wait_for(lambda rows: "yes once" in rows[-1] or "yes once" in "\n".join(rows[-3:]), what="the question")
        tmux.type("y")
        tmux.wait_for(lambda rows, n=n: tmux.history().count("→ approved once") > n, what=f"answer {n + 1}")
    tmux.wait_text("All twenty made")
    tmux.wait_for(lambda rows: bool(PROMPT_READY.search("\n".join(rows))), what="the prompt again")
    history = tmux.history()
    assert history.count("→ approved once") == count
    assert not ECHOED_REPLY.search(history), ECHOED_REPLY.search(history)
    assert all((workspace / f"made{n}.txt").exists() for n in range(count))
