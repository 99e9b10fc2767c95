"""End-to-end: the REPL's swarm board, /mode, attached media, /skills, /mcp and image results, in a pty."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import save_servers
from tests.clirun import write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.replpty import Repl
from tests.swarm_script import is_sub_agent, steps_done, task_number

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries

SWE_TOOLS = {"bash", "view", "createfile", "strreplace", "insert", "submit"}
ROLES = ("researcher", "fact checker", "reviewer")
# The REPL wraps the line at the terminal's width (a long workspace path moves "KB]" to the next line).
_GAP = r"(?:\s|\x1b\[[0-9;?]*[A-Za-z])+"  # a space, or where the line wrapped: a line break and cursor moves
IMAGE_LINE = re.compile(rf"\[image{_GAP}\S*shot\.png{_GAP}64x48{_GAP}image/png,{_GAP}\d+{_GAP}KB\]")


def user_content(request: RecordedRequest) -> object:
    return [m for m in request.messages if m["role"] == "user"][-1]["content"]


def image_parts(content: object) -> list[dict]:
    return [part for part in content if part.get("type") == "image_url"] if isinstance(content, list) else []


def write_png(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    from PIL import Image as PILImage

    PILImage.new("RGB", size, (200, 30, 30)).save(path)
    return path


# -- 1. the live swarm board -------------------------------------------------------------------------


def three_sub_agents(request: RecordedRequest) -> Reply:
    done = steps_done(request)
    if not is_sub_agent(request):
        if done == 0:
            agents = [{"role": role, "task": f"TASK-{i}: note {i}"} for i, role in enumerate(ROLES)]
            return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
        return Reply(content="The swarm is finished.")
    i = task_number(request)
    if done == 0:  # staggered, so the board is seen with agents in different states
        return Reply(delay=0.2 + 0.3 * i, tool_calls=[ToolCall("bash", {"command": f"echo {i} > note{i}.txt"})])
    return Reply(delay=0.1, tool_calls=[ToolCall("submit", {"summary": f"wrote note{i}"})])


def test_swarm_board_updates_in_place_then_reports_critical_steps(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    fake_llm.responder = three_sub_agents
    repl: Repl = spawn("--mode", "swarm", "-y")
    repl.wait_prompt()
    repl.send_line("take notes in parallel")
    repl.expect("swarm: 3 sub-agents (3 done)")
    repl.expect("The swarm is finished.")
    repl.expect("swarm: 4 critical steps · 8 total steps · 7 tool calls · 3 sub-agents")
    repl.wait_prompt()
    for i in range(3):
        assert (workspace / f"note{i}.txt").read_text() == f"{i}\n"
    transcript = repl.transcript
    # the final board: one line per sub-agent, its role, "done" and its result
    for i, role in enumerate(ROLES):
        assert re.search(rf"✓ sub-{i + 1}\s+{role}\s+done\s+2 steps\s+wrote note{i}", transcript), transcript[-2000:]
    # while they ran, the board showed them running with their last tool
    assert re.search(r"▶ sub-\d\s+\S.*running .*bash echo", transcript)
    raw: str = repl.raw.getvalue()  # type: ignore[attr-defined]
    # redrawn in place: cursor up over the board's own lines, never a whole-screen clear
    assert re.search(r"\x1b\[[2-4]A\r\x1b\[J", raw)
    assert "\x1b[2J" not in raw
    # a sub-agent's tool calls live on its board line, not as separate tool lines
    assert "● bash echo" not in transcript
    assert "● spawn_agents" in transcript


# -- 2. /mode rebuilds tools and prompt -------------------------------------------------------------


def test_mode_command_rebuilds_tools_keeping_the_history(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="quick answer"), Reply(content="swarm ready"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/mode instant")
    repl.expect(re.compile(r"instant · thinking off · context \d+%"))  # the toolbar
    repl.send_line("first question")
    repl.expect("quick answer")
    repl.wait_prompt()
    repl.send_line("/mode swarm")
    repl.expect(re.compile(r"swarm · thinking on · context \d+%"))
    repl.send_line("second question")
    repl.expect("swarm ready")
    repl.wait_prompt()
    instant, swarm = fake_llm.chat_requests
    assert set(instant.tool_names()) == SWE_TOOLS
    assert instant.body["thinking"] == {"type": "disabled"}
    assert "spawn_agents" in swarm.tool_names() and "screenshot" in swarm.tool_names()
    assert swarm.body.get("thinking") != {"type": "disabled"}
    # the history carried over; the system prompt is the swarm's own
    roles = [m["role"] for m in swarm.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert swarm.messages[1]["content"] == "first question" and swarm.messages[2]["content"] == "quick answer"
    assert "spawn_agents" in swarm.messages[0]["content"] and "spawn_agents" not in instant.messages[0]["content"]


# -- 3. attaching images and video ------------------------------------------------------------------


def test_image_command_attaches_the_image_to_the_next_message(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    write_png(workspace / "shot.png")
    fake_llm.script(Reply(content="a red picture"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/image shot.png")
    assert IMAGE_LINE.search(repl.expect(IMAGE_LINE))
    repl.wait_prompt()
    repl.send_line("what colour is it?")
    repl.expect("a red picture")
    content = user_content(fake_llm.chat_requests[0])
    assert isinstance(content, list)
    assert any(part.get("type") == "text" and "what colour is it?" in part["text"] for part in content)
    [image] = image_parts(content)
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert "base64" not in repl.transcript and "iVBOR" not in repl.transcript


def test_image_mention_and_pasted_path_attach_images(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    write_png(workspace / "shot.png")
    dropped = write_png(workspace / "my screen.png", (30, 20))
    fake_llm.script(Reply(content="saw the mention"), Reply(content="saw the pasted one"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("compare @shot.png with the design")
    repl.expect(IMAGE_LINE)
    repl.expect("saw the mention")
    repl.wait_prompt()
    first = user_content(fake_llm.chat_requests[0])
    assert len(image_parts(first)) == 1
    assert "IHDR" not in str(first)  # the image went as an image, not as text
    # a message that is only a (terminal-escaped) image path attaches it and waits for the words
    repl.send_line(str(dropped).replace(" ", "\\ "))
    repl.expect(re.compile(rf"attached{_GAP}\[image{_GAP}\S*my{_GAP}screen\.png{_GAP}30x20{_GAP}image/png"))
    repl.wait_prompt()
    assert len(fake_llm.chat_requests) == 1
    repl.send_line("and this one?")
    repl.expect("saw the pasted one")
    second = user_content(fake_llm.chat_requests[1])
    assert len(image_parts(second)) == 1


def test_video_command_attaches_timestamped_frames(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    import cv2
    import numpy as np

    clip = workspace / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for index in range(30):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:] = (0, 0, 255) if index < 15 else (255, 0, 0)
        writer.write(frame)
    writer.release()
    fake_llm.script(Reply(content="red then blue"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/video clip.mp4")
    line = repl.expect(re.compile(r"attached video \S*clip\.mp4 \([\d.]+ KB\): \d+ frames"))
    assert "clip.mp4" in line
    repl.wait_prompt()
    repl.send_line("what happens?")
    repl.expect("red then blue")
    content = user_content(fake_llm.chat_requests[0])
    assert len(image_parts(content)) >= 2
    assert any(part.get("type") == "text" and "t=" in part["text"] for part in content)
    assert "base64" not in repl.transcript


def test_missing_image_is_one_line_and_nothing_is_sent(spawn, fake_llm: FakeLLM) -> None:
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/image nowhere.png")
    repl.expect("image not found")
    repl.wait_prompt()
    assert "Traceback" not in repl.transcript and not fake_llm.chat_requests


# -- 4. /skills and /mcp ----------------------------------------------------------------------------


def write_skill(folder: Path, name: str, frontmatter: str) -> Path:
    path = folder / name / "SKILL.md"
    path.parent.mkdir(parents=True)
    path.write_text(f"---\n{frontmatter}\n---\nHow to {name}.\n")
    return path


def test_skills_command_lists_sources_shadowed_and_invalid(spawn, home: Path, workspace: Path) -> None:
    user_skills = home.parent / "userhome" / ".claude" / "skills"
    project_skills = workspace / ".agents" / "skills"
    mine = write_skill(project_skills, "release-notes", "name: release-notes\ndescription: write release notes")
    theirs = write_skill(user_skills, "release-notes", "name: release-notes\ndescription: older notes")
    write_skill(user_skills, "deploy", "name: deploy\ndescription: ship it")
    broken = write_skill(user_skills, "broken", "name: broken")  # no description
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/skills")
    start = len(repl.transcript)
    repl.expect("invalid (skipped):")
    repl.expect(str(broken))
    out = repl.transcript[start:]
    assert re.search(rf"release-notes\s+project:\.agents/skills\s+{re.escape(str(mine))}", out), out
    assert re.search(r"deploy\s+user:~/\.claude/skills\s+\S*deploy/SKILL\.md", out), out
    assert f"{theirs}  (shadowed by project:.agents/skills)" in out
    assert "shadowed (a skill of the same name above wins):" in out


def test_mcp_command_shows_state_source_and_tool_count(spawn, home: Path) -> None:
    from tests.mcp_servers.fixtures import stdio_config

    off = stdio_config("off")
    off.enabled = False
    save_servers(
        home,
        [stdio_config("demo"), McpServerConfig(name="ghost", command="no-such-mcp-binary", source="cursor"), off],
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    ready = re.compile(r"demo\s+stdio\s+ready \((\d+) tools\)\s+\[test\]")
    for _ in range(60):  # the servers start in the background; ask until the demo server is up
        start = len(repl.transcript)
        repl.send_line("/mcp")
        repl.expect(re.compile(r"off\s+stdio"))
        repl.wait_prompt()
        out = repl.transcript[start:]
        if ready.search(out):
            break
    match = ready.search(out)
    assert match, out
    assert int(match.group(1)) >= 3
    assert re.search(r"ghost\s+stdio\s+failed\s+\[cursor\]", out), out
    assert "no-such-mcp-binary" in out and "ghost.log" in out
    assert re.search(r"off\s+stdio\s+disabled\s+\[test\]", out), out


# -- 5. images in tool results ----------------------------------------------------------------------


def test_screenshot_result_shows_a_line_per_image_never_base64(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    (workspace / "box.html").write_text(
        "<html><body style='margin:0;background:#fff'>"
        "<div style='width:200px;height:150px;background:rgb(0,160,0)'></div></body></html>"
    )
    fake_llm.script(
        Reply(tool_calls=[ToolCall("screenshot", {"target": "box.html", "width": 800, "height": 600})]),
        Reply(content="I see a green box."),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("look at box.html")
    repl.expect("I see a green box.", timeout=90)
    out = repl.transcript
    assert re.search(r"● screenshot.*box\.html", out), out
    # What the tool printed (its ⎿ block), so a failure says whether the capture failed or the line is missing.
    result = out[out.find("⎿") :] if "⎿" in out else out[-3000:]
    assert "✗" not in result.split("\n", 1)[0], result
    # Not anchored to a line: the stream carries the live status line's redraws, which the terminal draws
    # over but this transcript keeps beside the text (the image line can come right after one).
    assert re.search(r"\[image [^\]\n]*800x600 image/png, \d+ KB\]", out), result
    assert "base64" not in repl.transcript and "iVBOR" not in repl.transcript
    assert image_parts(fake_llm.chat_requests[1].messages[-1]["content"]) or any(
        image_parts(m.get("content")) for m in fake_llm.chat_requests[1].messages
    )


def test_first_interactive_run_offers_other_agents_mcp_servers_once(spawn, home: Path, tmp_path: Path) -> None:
    import json

    from kimicode.mcp.store import load_servers
    from tests.mcp_servers.fixtures import stdio_config

    demo = stdio_config("fromcursor")
    cursor = tmp_path / "userhome" / ".cursor" / "mcp.json"  # tests.clirun points HOME here
    cursor.parent.mkdir(parents=True, exist_ok=True)
    cursor.write_text(json.dumps({"mcpServers": {"fromcursor": {"command": demo.command, "args": demo.args}}}))

    repl: Repl = spawn()
    repl.expect("Found 1 MCP server(s)")
    repl.expect("Import them into")
    repl.send("y\r")
    repl.wait_prompt()
    assert [server.name for server in load_servers(home)] == ["fromcursor"]
    ready = re.compile(r"fromcursor\s+stdio\s+ready \(\d+ tools\)")
    for _ in range(60):  # imported servers start with this very session
        start = len(repl.transcript)
        repl.send_line("/mcp")
        repl.expect(re.compile(r"fromcursor\s+stdio"))
        repl.wait_prompt()
        if ready.search(repl.transcript[start:]):
            break
    assert ready.search(repl.transcript[start:]), repl.transcript[start:]
    repl.send_line("/exit")
    assert repl.wait_exit() == 0

    again: Repl = spawn()  # the answer is remembered: no second offer
    again.wait_prompt()
    assert "Found 1 MCP server(s)" not in again.transcript


def test_video_flag_with_upload_route_reaches_the_first_message(spawn, fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    from tests.test_e2e_vision import write_video

    write_home_config(home, 'retry_base_delay = 0.01\nmax_retries = 1\nvideo_input = "upload"\n')
    clip = workspace / "clip.mp4"
    write_video(clip, seconds=1.0)
    fake_llm.script(Reply(content="seen the upload"))
    repl: Repl = spawn("--video", str(clip))
    repl.wait_prompt()
    repl.send_line("what happens?")
    repl.expect("seen the upload")
    [uploaded] = fake_llm.files.values()
    assert uploaded.data == clip.read_bytes()
    content = user_content(fake_llm.chat_requests[0])
    assert content[0]["type"] == "video_url" and uploaded.id in str(content[0])
