"""The swarm board folds sub-agent updates into one line per sub-agent."""

from __future__ import annotations

from kimicode.agent.events import SubAgentUpdate
from kimicode.frontends.repl.board import SwarmBoard


def test_board_shows_each_sub_agent_once_with_its_latest_state() -> None:
    board = SwarmBoard()
    board.update(SubAgentUpdate("sub-1", "tester", "queued"))
    board.update(SubAgentUpdate("sub-2", "reviewer", "queued"))
    board.update(SubAgentUpdate("sub-1", "tester", "running", 2, "bash pytest -q"))
    assert board.active
    lines = board.lines(width=80)
    assert lines[0] == "swarm: 2 sub-agents (1 running, 1 queued)"
    assert lines[1].startswith("▶ sub-1") and "tester" in lines[1] and "2 steps  bash pytest -q" in lines[1]
    assert lines[2].startswith("· sub-2")

    board.update(SubAgentUpdate("sub-1", "tester", "done", 3, "submit", "all 12 tests pass"))
    board.update(SubAgentUpdate("sub-2", "reviewer", "failed", 1, "", "failed: the model request timed out"))
    assert not board.active
    lines = board.lines(width=72)
    assert lines[0] == "swarm: 2 sub-agents (1 done, 1 failed)"
    assert lines[1].startswith("✗ sub-2") and lines[2].startswith("✓ sub-1")
    assert "all 12 tests pass" in lines[2]
    assert all(len(line) <= 72 for line in lines)
    assert board.lines(width=40)[1].endswith("…") and len(board.lines(width=40)[1]) == 40


def test_board_limits_rows() -> None:
    board = SwarmBoard()
    for i in range(1, 41):
        board.update(SubAgentUpdate(f"sub-{i}", "worker", "running", 1))
    lines = board.lines(max_rows=10)
    assert len(lines) == 12 and lines[-1] == "  … and 30 more"
    assert lines[1].startswith("▶ sub-1 ") and lines[10].startswith("▶ sub-10")


def test_a_sub_agent_todo_list_shows_on_its_line() -> None:
    from kimicode.agent.events import TodoUpdate

    board = SwarmBoard()
    board.update(SubAgentUpdate("sub-1", "fixer", "running", 2, "view parser.py"))
    items = [{"content": "reproduce", "status": "done"}, {"content": "patch the parser", "status": "in_progress"},
             {"content": "run tests", "status": "pending"}]
    board.update_todo(TodoUpdate(items, "sub-1"))
    board.update_todo(TodoUpdate(items, "sub-9"))  # not on the board: ignored
    assert board.lines(width=120)[1].endswith("2 steps  [1/3: patch the parser] view parser.py")
    board.update(SubAgentUpdate("sub-1", "fixer", "done", 4, "submit", "parser fixed"))
    assert board.lines(width=120)[1].endswith("4 steps  parser fixed")  # a finished agent shows its result
