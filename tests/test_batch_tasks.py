"""Task lines and what a Ray cluster can reach, without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimicode.batch.ray_engine import check_reachable
from kimicode.batch.tasks import Defaults, TaskFileError, TaskSpec, load_tasks


def test_defaults_fill_what_a_line_leaves_out_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    tasks = tmp_path / "TASKS.jsonl"
    tasks.write_text(
        '{"id": "a", "task": "do a", "repo": "svc"}\n'
        "\n"
        '{"id": "b", "task": "do b", "repo": "https://git.example.com/b.git", "check": "make test", "max_steps": 7}\n'
    )
    a, b = load_tasks(tasks, Defaults(setup="make deps", check="pytest -q", mode="instant", timeout=60))
    assert (a.repo, a.setup, a.check, a.mode, a.max_steps, a.timeout) == (
        str(tmp_path / "svc"), "make deps", "pytest -q", "instant", None, 60
    )
    assert (b.repo, b.check, b.max_steps) == ("https://git.example.com/b.git", "make test", 7)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"task": "x", "repo": "."}', "'id' must be a string"),
        ('{"id": "../up", "task": "x", "repo": "."}', "'id' must be a string of letters"),
        ('{"id": "a", "task": "", "repo": "."}', "'task' must be a non-empty string"),
        ('{"id": "a", "task": "x"}', "no 'repo'"),
        ('{"id": "a", "task": "x", "repo": ".", "mode": "turbo"}', "unknown mode 'turbo'"),
        ('{"id": "a", "task": "x", "repo": ".", "max_steps": 0}', "'max_steps' must be a positive integer"),
        ("[1, 2]", "a task is a JSON object"),
        ("{oops", "not JSON"),
    ],
)
def test_a_bad_line_is_named_with_its_reason(tmp_path: Path, line: str, message: str) -> None:
    tasks = tmp_path / "TASKS.jsonl"
    tasks.write_text(line + "\n")
    with pytest.raises(TaskFileError) as caught:
        load_tasks(tasks, Defaults())
    assert str(caught.value).startswith(f"{tasks}:1: ") and message in str(caught.value)


def test_local_paths_are_refused_up_front_when_the_cluster_has_other_machines() -> None:
    url = TaskSpec(id="u", task="x", repo="https://git.example.com/u.git")
    local = TaskSpec(id="p", task="x", repo="/srv/code/p")
    here = {"127.0.0.1", "10.0.0.5"}
    one_node = [{"NodeManagerAddress": "10.0.0.5"}]
    two_nodes = [*one_node, {"NodeManagerAddress": "10.0.0.9"}]
    assert check_reachable([url, local], one_node, here) == ""
    assert check_reachable([url], two_nodes, here) == ""
    problem = check_reachable([url, local], two_nodes, here)
    assert problem.startswith("task p: /srv/code/p is a path on this machine") and "10.0.0.9" in problem
    assert "git URL" in problem
