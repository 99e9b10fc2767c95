"""A task's checkout where a killed run left git's bookkeeping behind: a worktree git still lists but whose
folder is gone, and one whose folder is still there. The batch prunes only when git needs it, so both must
still check out and leave the repository's worktree list as it found it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from kimicode.batch.driver import WORK_DIR
from tests.batch_script import HOME_CONFIG, make_repos, read_results, responder, write_tasks
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM


def worktrees(repo: Path) -> list[str]:
    listing = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True)
    return [line for line in listing.stdout.splitlines() if line.startswith("worktree ")]


def test_checkouts_left_by_a_killed_run_are_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    (repo,) = make_repos(tmp_path, count=1)
    tasks = tmp_path / "TASKS.jsonl"
    ids = write_tasks(tasks, [repo], 2)
    before = worktrees(repo)
    work = tmp_path / "out" / WORK_DIR
    for task_id in ids:  # what a run killed mid-task leaves: git still lists both checkouts
        subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(work / task_id)], cwd=repo, check=True)
    shutil.rmtree(work / ids[0])  # this one's folder is gone, the other's is still there
    assert len(worktrees(repo)) == len(before) + 2

    with FakeLLM() as server:
        server.responder = responder(0.0)
        proc = run_cli(["batch", str(tasks), "--workers", "2", "--out", "out"], home=home, cwd=tmp_path,
                       base_url=server.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {r["id"]: r["status"] for r in read_results(tmp_path / "out")} == dict.fromkeys(ids, "done")
    assert worktrees(repo) == before


def test_a_task_at_an_older_ref_is_checked_out_there_and_its_patch_is_against_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    (repo,) = make_repos(tmp_path, count=1)
    first = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    (repo / "later.txt").write_text("a later commit\n")
    subprocess.run("git add . && git -c user.name=t -c user.email=t@t commit -qm later", shell=True, cwd=repo,
                   check=True)
    tasks = tmp_path / "TASKS.jsonl"
    tasks.write_text(json.dumps({"id": "t00", "task": "BATCH-t00: write done.txt", "repo": str(repo), "ref": first,
                                 "check": "test ! -e later.txt && grep -q t00 done.txt"}) + "\n")
    with FakeLLM() as server:
        server.responder = responder(0.0)
        proc = run_cli(["batch", str(tasks), "--out", "out"], home=home, cwd=tmp_path, base_url=server.base_url,
                       timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [(r["id"], r["status"]) for r in read_results(tmp_path / "out")] == [("t00", "done")]
    patch = (tmp_path / "out" / "t00" / "patch.diff").read_text()
    assert "+t00" in patch and "later.txt" not in patch  # against the task's ref, not the branch's head
    check = subprocess.run(["git", "apply", "--check", str(tmp_path / "out" / "t00" / "patch.diff")], cwd=repo)
    assert check.returncode == 0


def test_tasks_sharing_a_repository_each_get_their_own_checkout_and_a_folder_that_is_none_fails(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    (repo,) = make_repos(tmp_path, count=1)
    (repo / "sub").mkdir()
    (repo / "sub" / "keep.txt").write_text("in a subfolder\n")
    subprocess.run("git add . && git -c user.name=t -c user.email=t@t commit -qm sub", shell=True, cwd=repo, check=True)
    plain = tmp_path / "plain"
    plain.mkdir()
    where = {"t00": repo, "t01": repo / "sub", "t02": plain, "t03": repo}
    tasks = tmp_path / "TASKS.jsonl"
    tasks.write_text("".join(json.dumps({"id": i, "task": f"BATCH-{i}: write done.txt", "repo": str(r),
                                         "check": f"grep -q {i} done.txt"}) + "\n" for i, r in where.items()))
    with FakeLLM() as server:
        server.responder = responder(0.0)
        proc = run_cli(["batch", str(tasks), "--workers", "1", "--out", "out"], home=home, cwd=tmp_path,
                       base_url=server.base_url, timeout=120)
    results = {r["id"]: r for r in read_results(tmp_path / "out")}
    assert {i: r["status"] for i, r in results.items()} == {"t00": "done", "t01": "done", "t02": "failed",
                                                            "t03": "done"}, proc.stderr
    assert "is not a git repository" in results["t02"]["reason"]
    for task_id in ("t00", "t01", "t03"):
        patch = (tmp_path / "out" / task_id / "patch.diff").read_text()
        assert f"+{task_id}" in patch and patch.count("+++ b/") == 1, patch
