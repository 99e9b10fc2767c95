"""A repository's extensions (hooks in .claude/settings.json, custom commands and agents in the folders of
kimicode and other agents) are part of the trust fingerprint: changing any of them asks for trust again,
and the walk over them opens nothing but regular files inside the workspace."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kimicode.security.trust import (
    MAX_EXTENSION_FILES,
    ProjectFiles,
    TrustStore,
    project_extension_files,
    project_fingerprint,
)
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 1\n")
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "cloned"
    repo.mkdir()
    return repo


def test_a_changed_command_or_agent_file_asks_for_trust_again(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    (repo / ".claude").mkdir()
    hooks = {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": f"touch {marker}"}]}]}
    (repo / ".claude" / "settings.json").write_text(json.dumps({"hooks": hooks}))
    (repo / ".claude" / "commands").mkdir()
    (repo / ".claude" / "commands" / "review.md").write_text("Review $ARGUMENTS\n")
    trusted = run_cli(["trust"], home=home, cwd=repo)
    assert trusted.returncode == 0, trusted.stderr
    assert "hooks in .claude/settings.json" in trusted.stdout  # what trusting turns on is listed
    fake_llm.script(Reply(content="one"), Reply(content="two"), Reply(content="three"))
    assert run_cli(["-p", "hi"], home=home, cwd=repo, base_url=fake_llm.base_url).returncode == 0
    assert marker.exists()  # trusted: the project's hook ran

    def edit_command() -> None:
        (repo / ".claude" / "commands" / "review.md").write_text("Review $ARGUMENTS and run !`curl x`\n")

    def add_agent() -> None:
        (repo / ".codex" / "agents").mkdir(parents=True)
        (repo / ".codex" / "agents" / "writer.toml").write_text('name = "writer"\n')

    for change in (edit_command, add_agent):
        run_cli(["trust"], home=home, cwd=repo)
        marker.unlink(missing_ok=True)
        change()
        proc = run_cli(["-p", "hi"], home=home, cwd=repo, base_url=fake_llm.base_url)
        assert proc.returncode == 0, proc.stderr
        assert not marker.exists()  # changed since it was trusted: nothing of the project's runs
        assert "not trusted" in proc.stderr


def test_folders_without_extensions_keep_their_fingerprint(repo: Path) -> None:
    before = project_fingerprint(repo)
    (repo / ".claude" / "commands").mkdir(parents=True)  # empty folders add nothing
    assert project_fingerprint(repo) == before
    (repo / ".claude" / "commands" / "a.md").write_text("a\n")
    assert project_fingerprint(repo) != before


def test_the_walk_opens_no_fifo_follows_no_link_and_is_bounded(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("not the project's\n")
    commands = repo / ".kimicode" / "commands"
    commands.mkdir(parents=True)
    os.mkfifo(commands / "pipe.md")  # opening it would block every start in the folder
    (commands / "linked.md").symlink_to(outside / "secret.md")
    (repo / ".claude").mkdir()
    (repo / ".claude" / "agents").symlink_to(outside, target_is_directory=True)
    (commands / "real.md").write_text("real\n")
    assert project_extension_files(repo) == [commands.resolve() / "real.md"]
    files = ProjectFiles(repo)  # returns: the FIFO was never opened
    assert commands.resolve() / "real.md" in files.data
    many = repo / ".claude" / "commands"
    many.mkdir()
    for i in range(MAX_EXTENSION_FILES + 5):
        (many / f"c{i:04d}.md").write_text("x\n")
    assert len(project_extension_files(repo)) == MAX_EXTENSION_FILES


def test_trust_store_sees_a_new_settings_file(home: Path, repo: Path) -> None:
    store = TrustStore(home)
    store.set(repo, True, project_fingerprint(repo))
    assert store.is_trusted(repo)
    (repo / ".gemini").mkdir()
    (repo / ".gemini" / "settings.json").write_text('{"hooks": {}}')
    assert not store.is_trusted(repo)
