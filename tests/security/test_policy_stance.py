"""The approval stance in the policy: auto-edit approves workspace edits only; plan mode lets only reads through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kimicode.security.policy import Policy
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from kimicode.tools.createfile import CreateFileTool
from kimicode.tools.propose_plan import ProposePlanTool
from kimicode.tools.screenshot import ScreenshotTool
from kimicode.tools.strreplace import StrReplaceTool
from kimicode.tools.task_stop import TaskStopTool
from kimicode.tools.todo import TodoTool
from kimicode.tools.view import ViewTool

BASH, VIEW, CREATE, EDIT, SHOT = BashTool(True), ViewTool(), CreateFileTool(), StrReplaceTool(), ScreenshotTool()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    user = tmp_path / "userhome"
    (user / ".ssh").mkdir(parents=True)
    (user / ".ssh" / "id_rsa").write_text("PRIVATE")
    monkeypatch.setenv("HOME", str(user))
    kimi = tmp_path / "kimihome"
    kimi.mkdir()
    ws = tmp_path / "proj"
    ws.mkdir()
    (ws / "app.py").write_text("x = 1\n")
    return {"user": user, "kimi": kimi, "ws": ws}


def decide(env: dict[str, Path], tool: Any, args: dict[str, Any], **kw: Any):
    return Policy(workspace=env["ws"], home=env["kimi"], **kw).decide(tool, args, ToolContext(workspace=env["ws"]))


def test_auto_edit_approves_workspace_edits_and_still_asks_for_commands(env) -> None:
    assert decide(env, EDIT, {"path": "app.py", "old_str": "1", "new_str": "2"}).action == "ask"
    edit = decide(env, EDIT, {"path": "app.py", "old_str": "1", "new_str": "2"}, stance="auto-edit")
    assert edit.action == "allow" and "auto-edit" in edit.reason
    assert decide(env, CREATE, {"path": "src/new.py", "content": ""}, stance="auto-edit").action == "allow"
    assert decide(env, BASH, {"command": "touch x"}, stance="auto-edit").action == "ask"
    # outside the workspace, protected paths and secrets are not edits auto-edit covers
    outside = env["ws"].parent / "elsewhere.txt"
    assert decide(env, CREATE, {"path": str(outside), "content": ""}, stance="auto-edit").action == "ask"
    protected = decide(env, CREATE, {"path": ".git/hooks/pre-commit", "content": "x"}, stance="auto-edit")
    assert protected.action == "ask" and not protected.rememberable
    assert decide(env, CREATE, {"path": ".env", "content": "K=1"}, stance="auto-edit").action == "deny"


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        (CREATE, {"path": "new.py", "content": ""}),
        (EDIT, {"path": "app.py", "old_str": "1", "new_str": "2"}),
        (BASH, {"command": "touch x"}),
        (BASH, {"command": "ls > listing.txt"}),  # a redirection writes
        (BASH, {"command": "ls $(rm -rf .)"}),  # a substitution runs a command
        (BASH, {"command": "cat app.py", "background": True}),  # a task runs on after the call
        (BASH, {"command": "ls", "escalate": "needs the network"}),  # leaves the sandbox
        (BASH, {"command": "python -m http.server"}),
    ],
    ids=["createfile", "strreplace", "touch", "redirect", "substitution", "background", "escalate", "server"],
)
@pytest.mark.parametrize("yolo", [False, True], ids=["asks", "yolo"])
def test_plan_mode_refuses_every_change_whatever_yolo_says(env, tool: Any, args: dict[str, Any], yolo: bool) -> None:
    decision = decide(env, tool, args, stance="plan", yolo=yolo, trusted=True)
    assert decision.action == "deny" and decision.planning and "plan mode" in decision.reason
    assert not decision.rememberable


def test_plan_mode_lets_reads_through_under_the_usual_rules(env) -> None:
    assert decide(env, VIEW, {"path": "app.py"}, stance="plan").action == "allow"
    assert decide(env, BASH, {"command": "grep -n x app.py | head"}, stance="plan").action == "allow"
    assert decide(env, BASH, {"command": "git status"}, stance="plan").action == "allow"
    assert decide(env, SHOT, {"target": "http://localhost:3000"}, stance="plan").action == "allow"
    for tool, args in ((TodoTool(), {"items": []}), (ProposePlanTool(), {"plan": "p"}), (TaskStopTool(), {"task_id": "1"})):
        assert decide(env, tool, args, stance="plan").action == "allow", tool.name
    # reading is still governed by the rules: a secret stays refused, a read outside still asks
    secret = decide(env, VIEW, {"path": str(env["user"] / ".ssh" / "id_rsa")}, stance="plan")
    assert secret.action == "deny" and not secret.planning
    assert decide(env, VIEW, {"path": "/etc/hostname"}, stance="plan").action == "ask"


def test_an_unknown_stance_is_refused(env) -> None:
    with pytest.raises(ValueError):
        Policy(workspace=env["ws"], home=env["kimi"], stance="sometimes")
