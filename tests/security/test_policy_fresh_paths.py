"""Each policy decision sees the file system as it is then: what a path resolved to in one decision is never
the answer of the next, so a file or folder swapped for a link between two calls is judged anew."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kimicode.security.decision import Action
from kimicode.security.policy import Policy
from kimicode.tools.base import Tool, ToolContext
from kimicode.tools.createfile import CreateFileTool
from kimicode.tools.view import ViewTool

VIEW, CREATE = ViewTool(), CreateFileTool()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    user = tmp_path / "userhome"
    (user / ".ssh").mkdir(parents=True)
    (user / ".ssh" / "id_rsa").write_text("PRIVATE")
    (user / ".bashrc").write_text("# shell start-up\n")
    monkeypatch.setenv("HOME", str(user))
    ws = tmp_path / "proj"
    (ws / "out").mkdir(parents=True)
    (ws / "out" / "notes.txt").write_text("notes\n")
    return {"user": user, "ws": ws, "kimi": tmp_path / "kimihome"}


def decide(policy: Policy, tool: Tool, path: str, ws: Path) -> Action:
    return policy.decide(tool, {"path": path}, ToolContext(workspace=ws)).action


def swap_for_link(path: Path, target: Path) -> None:
    """Replace ``path`` by a link to ``target`` in one step, as `ln -sfn target new && mv -T new path` does."""
    fresh = path.with_name(path.name + ".new")
    os.symlink(target, fresh)
    os.replace(fresh, path)


def test_a_file_that_became_a_link_to_a_secret_is_refused_on_the_next_call(env: dict[str, Path]) -> None:
    policy = Policy(workspace=env["ws"], home=env["kimi"], yolo=True)
    assert decide(policy, VIEW, "out/notes.txt", env["ws"]) == Action.ALLOW
    (env["ws"] / "out" / "notes.txt").unlink()
    swap_for_link(env["ws"] / "out" / "notes.txt", env["user"] / ".ssh" / "id_rsa")
    assert decide(policy, VIEW, "out/notes.txt", env["ws"]) == Action.DENY


def test_a_folder_that_became_a_link_is_judged_by_where_it_leads_now(env: dict[str, Path]) -> None:
    policy = Policy(workspace=env["ws"], home=env["kimi"], yolo=True, headless=True)
    assert decide(policy, CREATE, "out/.bashrc", env["ws"]) == Action.ALLOW
    (env["ws"] / "out" / "notes.txt").unlink()
    (env["ws"] / "out").rmdir()
    swap_for_link(env["ws"] / "out", env["user"])
    # out/.bashrc is now the user's shell start-up file: -y does not reach it.
    assert decide(policy, CREATE, "out/.bashrc", env["ws"]) == Action.DENY


def test_a_link_made_harmless_again_is_allowed_again(env: dict[str, Path]) -> None:
    policy = Policy(workspace=env["ws"], home=env["kimi"], yolo=True)
    link = env["ws"] / "out" / "key"
    os.symlink(env["user"] / ".ssh" / "id_rsa", link)
    assert decide(policy, VIEW, "out/key", env["ws"]) == Action.DENY
    swap_for_link(link, env["ws"] / "out" / "notes.txt")
    assert decide(policy, VIEW, "out/key", env["ws"]) == Action.ALLOW


def test_the_home_folder_follows_home_from_one_decision_to_the_next(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's home is kept between decisions only while $HOME says the same: secrets under a new home
    are refused on the very next call, in a command as in a file tool."""
    from kimicode.tools.bash import BashTool

    other = tmp_path / "otherhome"
    (other / ".ssh").mkdir(parents=True)
    (other / ".ssh" / "id_rsa").write_text("PRIVATE")
    policy = Policy(workspace=env["ws"], home=env["kimi"], yolo=True, headless=True)
    ctx = ToolContext(workspace=env["ws"])
    bash = BashTool()
    assert decide(policy, VIEW, str(env["user"] / ".ssh" / "id_rsa"), env["ws"]) == Action.DENY
    assert policy.decide(bash, {"command": "cat ~/.ssh/id_rsa"}, ctx).action == Action.DENY
    assert policy.decide(bash, {"command": f"cat {other}/.ssh/id_rsa"}, ctx).action == Action.ALLOW
    monkeypatch.setenv("HOME", str(other))
    assert policy.decide(bash, {"command": f"cat {other}/.ssh/id_rsa"}, ctx).action == Action.DENY
    assert decide(policy, VIEW, str(other / ".ssh" / "id_rsa"), env["ws"]) == Action.DENY
    monkeypatch.setenv("HOME", str(env["user"]) + "/")  # the same folder, spelt with a slash
    assert policy.decide(bash, {"command": f"cat {env['user']}/.ssh/id_rsa"}, ctx).action == Action.DENY
