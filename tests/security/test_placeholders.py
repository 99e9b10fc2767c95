"""The empty folders protected paths are mounted over: made when missing, removed when no sandbox uses them."""

from __future__ import annotations

from pathlib import Path

from kimicode.security.placeholders import Placeholders


def test_a_placeholder_is_removed_at_the_end_when_still_empty(tmp_path: Path) -> None:
    mine = Placeholders()
    assert mine.claim(tmp_path / ".vscode") == tmp_path / ".vscode"
    assert (tmp_path / ".vscode").is_dir()
    mine.remove()
    assert not (tmp_path / ".vscode").exists()


def test_a_placeholder_another_kimicode_mounts_stays_until_it_is_done(tmp_path: Path) -> None:
    first, second = Placeholders(), Placeholders()
    first.claim(tmp_path / ".mcp.json")
    second.claim(tmp_path / ".mcp.json")  # found empty: held, since removing it would undo its mount
    first.remove()
    assert (tmp_path / ".mcp.json").is_dir()
    second.remove()


def test_what_the_user_made_or_put_in_it_is_never_removed(tmp_path: Path) -> None:
    (tmp_path / ".kimicode").mkdir()
    (tmp_path / ".kimicode" / "config.toml").write_text("x = 1\n")
    placeholders = Placeholders()
    placeholders.claim(tmp_path / ".kimicode")
    placeholders.claim(tmp_path / ".github")
    (tmp_path / ".github" / "dependabot.yml").write_text("version: 2\n")  # written on the host meanwhile
    placeholders.remove()
    assert (tmp_path / ".kimicode" / "config.toml").read_text() == "x = 1\n"
    assert (tmp_path / ".github" / "dependabot.yml").exists()


def test_a_name_that_cannot_be_made_is_not_claimed(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert Placeholders().claim(tmp_path / "file" / ".vscode") is None
