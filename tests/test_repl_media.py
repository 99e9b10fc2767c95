"""How the REPL recognises image files in what the user types or pastes."""

from __future__ import annotations

from pathlib import Path

from kimicode.frontends.common.media import image_mentions, pasted_image_path, resolve_user_path
from kimicode.frontends.repl.next_message import attach_mentions


def make_files(ws: Path) -> None:
    (ws / "shots").mkdir()
    (ws / "shots" / "home page.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (ws / "logo.JPG").write_bytes(b"\xff\xd8\xff")
    (ws / "notes.txt").write_text("hello\n")


def test_pasted_paths_in_the_forms_terminals_and_file_managers_produce(tmp_path: Path) -> None:
    make_files(tmp_path)
    target = tmp_path / "shots" / "home page.png"
    for typed in (
        str(target),
        str(target).replace(" ", "\\ "),
        f"'{target}'",
        f'"{target}"  ',
        "file://" + str(target).replace(" ", "%20"),
        "shots/home\\ page.png",
    ):
        assert pasted_image_path(typed, tmp_path) == target, typed
    assert pasted_image_path("logo.JPG", tmp_path) == tmp_path / "logo.JPG"


def test_messages_that_are_not_just_an_image_path_are_left_alone(tmp_path: Path) -> None:
    make_files(tmp_path)
    for typed in ("notes.txt", "look at logo.JPG", "missing.png", "logo.JPG\nand more", "x" * 5000):
        assert pasted_image_path(typed, tmp_path) is None, typed[:40]


def test_image_mentions_become_images_and_text_mentions_stay_text(tmp_path: Path) -> None:
    make_files(tmp_path)
    text = "compare @logo.JPG, @logo.JPG and @notes.txt with @missing.png"
    assert image_mentions(text, tmp_path) == [tmp_path / "logo.JPG"]
    sent, attached = attach_mentions(text, tmp_path)
    assert attached == ["notes.txt"]
    assert '<file path="notes.txt">' in sent and "logo.JPG\">" not in sent


def test_home_relative_paths_expand(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_user_path("~/a.png", Path("/elsewhere")) == tmp_path / "a.png"
