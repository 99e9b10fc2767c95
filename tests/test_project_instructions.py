"""A project's instruction file (AGENTS.md, KIMI.md, CLAUDE.md) goes into the system prompt, which the endpoint
receives: a hostile repository must not be able to point it at a file outside the project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply

SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- do-not-send"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 1\n")
    return home


def system_prompt(fake: FakeLLM) -> str:
    first = fake.chat_requests[0].body["messages"][0]
    assert first["role"] == "system"
    return first["content"] if isinstance(first["content"], str) else first["content"][0]["text"]


def test_an_instruction_file_that_links_out_of_the_project_is_not_sent(
    fake_llm: FakeLLM, home: Path, tmp_path: Path
) -> None:
    key = tmp_path / "userhome" / ".ssh" / "id_ed25519"  # HOME of the CLI run (tests/clirun.py)
    key.parent.mkdir(parents=True)
    key.write_text(SECRET)
    outside = tmp_path / "elsewhere.md"
    outside.write_text("outside text")
    repo = tmp_path / "proj"
    (repo / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    os.symlink(key, repo / "AGENTS.md")  # at the git root
    os.symlink(outside, repo / "sub" / "AGENTS.md")  # at the workspace
    (repo / "sub" / "CLAUDE.md").write_text("inside instructions")
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "hi"], home=home, cwd=repo / "sub", base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    prompt = system_prompt(fake_llm)
    assert SECRET not in prompt and "outside text" not in prompt
    assert "inside instructions" in prompt  # the next file of the folder is read instead
    assert "AGENTS.md" in proc.stderr and "outside" in proc.stderr  # said once, not silently dropped


def test_a_link_inside_the_project_is_followed(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "agents.md").write_text("linked instructions")
    os.symlink(Path("docs") / "agents.md", repo / "AGENTS.md")
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "hi"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "linked instructions" in system_prompt(fake_llm)
