"""Attacks on the command sandbox from inside, against real bubblewrap, as root and as an unprivileged user.

Each command runs the way the bash tool runs it: ``Sandbox.wrap`` and a subprocess, in a fresh Python
process started as the user under test (``setpriv`` for uid 1000), so that what kimicode leaves on the host
after it ends is checked too. After each attack the host's own git runs in the workspace: a planted
``core.fsmonitor`` would run there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clirun import REPO
from tests.sandboxing import needs_bwrap

USER_UID = 1000
USERS = ["root", "user"]

# Runs one command the way the bash tool does and prints a JSON line with its exit code and output.
DRIVER = """
import json, subprocess, sys
from pathlib import Path
from kimicode.security.sandbox import detect_sandbox
workspace, home, command = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
sandbox = detect_sandbox("workspace-write", False, workspace, home)
assert sandbox.backend == "bwrap", sandbox.unavailable
proc = subprocess.run(sandbox.wrap(["bash", "-c", command], workspace), cwd=workspace, capture_output=True, text=True)
print(json.dumps({"code": proc.returncode, "out": proc.stdout + proc.stderr}))
"""


def as_user(user: str) -> list[str]:
    if user == "root":
        return []
    return ["setpriv", f"--reuid={USER_UID}", f"--regid={USER_UID}", "--clear-groups"]


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("these attacks switch users: they run as root (CI, containers)")


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder both root and uid 1000 can reach (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="kimicode-escape-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Box:
    def __init__(self, base: Path, user: str) -> None:
        self.user = user
        self.uid = 0 if user == "root" else USER_UID
        self.workspace = base / "ws"
        self.home = base / "kimihome"
        self.userhome = base / "userhome"
        self.outside = base / "outside"  # where a successful attack leaves its marker
        for folder in (self.workspace, self.home, self.userhome, self.outside):
            folder.mkdir()
            os.chown(folder, self.uid, self.uid)
        self.marker = self.outside / f"PWNED-{uuid.uuid4().hex[:8]}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIMI", "MOONSHOT", "GIT_"))}
        env.update(HOME=str(self.userhome), PYTHONPATH=str(REPO), KIMICODE_HOME=str(self.home))
        return env

    def host(self, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A program run on the host as the user under test (the user's own shell, outside kimicode)."""
        return subprocess.run(
            [*as_user(self.user), *argv], cwd=cwd or self.workspace, env=self.env(), capture_output=True, text=True
        )

    def sandboxed(self, command: str) -> dict[str, object]:
        proc = self.host(sys.executable, "-c", DRIVER, str(self.workspace), str(self.home), command)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1])

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.host("git", "-c", "user.name=t", "-c", "user.email=t@t", *args)

    def fsmonitor(self) -> str:
        return f'[core]\\n\\tfsmonitor = "touch {self.marker}"\\n'

    def repo(self) -> None:
        self.git("init", "-q")
        (self.workspace / "a.txt").write_text("a\n")
        os.chown(self.workspace / "a.txt", self.uid, self.uid)
        self.git("add", "a.txt")
        self.git("commit", "-qm", "one")

    def after(self) -> None:
        """What runs git on the host after a command: the user's `git status`, a checkpoint's `git add -A`."""
        self.git("status")
        self.git("-c", "core.hooksPath=/dev/null", "add", "-A")


@pytest.fixture(params=USERS)
def box(request: pytest.FixtureRequest, base: Path) -> Box:
    return Box(base, request.param)


@needs_bwrap
def test_renaming_git_away_and_rebuilding_it_fails(box: Box) -> None:
    box.repo()
    config = (box.workspace / ".git" / "config").read_text()
    result = box.sandboxed(
        "G=.gi; G=${G}t; mv $G $G-o; mkdir $G; cp -a $G-o/{HEAD,objects,refs,index} $G/; "
        f"printf '{box.fsmonitor()}' > $G/config"
    )
    box.after()
    assert not box.marker.exists()
    assert (box.workspace / ".git" / "config").read_text() == config
    assert not (box.workspace / ".git-o").exists()
    assert "busy" in str(result["out"]).lower()


@needs_bwrap
def test_git_control_files_cannot_be_written(box: Box) -> None:
    box.repo()
    result = box.sandboxed(
        "mkdir -p evil && cp -a .git/. evil/ && "
        f"printf '{box.fsmonitor()}' > evil/config; "
        "echo ../evil > .git/commondir; echo x > .git/hooks/pre-commit; "
        f"printf '{box.fsmonitor()}' >> .git/config; mv .git/config .git/c; "
        "git add a.txt && git commit -qm two && echo committed"
    )
    box.after()
    assert not box.marker.exists()
    assert not (box.workspace / ".git" / "commondir").exists()
    assert not (box.workspace / ".git" / "hooks" / "pre-commit").exists()
    assert "committed" not in str(result["out"])


@needs_bwrap
def test_git_init_in_a_folder_that_is_no_repository_fails_and_leaves_nothing(box: Box) -> None:
    result = box.sandboxed(f"git init -q && printf '{box.fsmonitor()}' >> .git/config && echo made")
    assert "made" not in str(result["out"])
    assert sorted(p.name for p in box.workspace.iterdir()) == []  # no placeholder left behind
    box.git("init", "-q")  # the user's own repository, later: nothing planted in it
    box.after()
    assert not box.marker.exists()


@needs_bwrap
def test_settings_for_editors_and_agents_cannot_be_created(box: Box) -> None:
    (box.workspace / "src").mkdir()
    os.chown(box.workspace / "src", box.uid, box.uid)
    result = box.sandboxed(
        "python3 -c \"open('.mcp.json','w').write('{}')\"; "
        "mkdir -p .vscode; echo '{}' > .vscode/tasks.json; mkdir .kimicode; echo 'yolo = true' > .kimicode/config.toml; "
        "mkdir -p .claude && echo '{}' > .claude/settings.json; mkdir -p .github/workflows; echo x > .github/workflows/ci.yml; "
        "mv .github .gh; mkdir -p .github/workflows && echo x > .github/workflows/ci.yml; "
        "echo ok > src/fine.txt; echo ok > .github/fine.txt"
    )
    names = sorted(str(p.relative_to(box.workspace)) for p in box.workspace.rglob("*"))
    assert names == [".github", ".github/fine.txt", "src", "src/fine.txt"], result["out"]
    assert (box.workspace / "src" / "fine.txt").stat().st_uid == box.uid  # owned by the user running kimicode


@needs_bwrap
def test_root_inside_cannot_unmount_or_remount(box: Box) -> None:
    box.repo()
    (box.userhome / ".ssh").mkdir()
    (box.userhome / ".ssh" / "id_rsa").write_text("sshsecret-4242\n")
    config = (box.workspace / ".git" / "config").read_text()
    result = box.sandboxed(
        "grep CapEff /proc/self/status; umount -l $PWD/.git; umount -l $PWD/.git/config; "
        f"printf '{box.fsmonitor()}' >> .git/config; mount -o remount,rw,bind /; touch {box.marker}; "
        "umount -l ~/.ssh; cat ~/.ssh/id_rsa; chroot / true && echo chrooted; unshare -Urm true && echo unshared"
    )
    out = str(result["out"])
    assert "CapEff:\t0000000000000000" in out
    assert not box.marker.exists()
    assert (box.workspace / ".git" / "config").read_text() == config
    assert "sshsecret" not in out and "chrooted" not in out and "unshared" not in out


@needs_bwrap
def test_a_tmux_server_on_the_host_is_out_of_reach(box: Box) -> None:
    sockets = box.outside / "tmux"
    sockets.mkdir(mode=0o700)
    os.chown(sockets, box.uid, box.uid)
    sock = sockets / "default"
    assert box.host("tmux", "-S", str(sock), "new-session", "-d").returncode == 0
    try:
        control = box.outside / "control"
        box.host("tmux", "-S", str(sock), "run-shell", f"touch {control}")
        assert control.exists()  # the socket works from the host
        result = box.sandboxed(f"tmux -S {sock} run-shell 'touch {box.marker}'; test -e {box.outside} || echo gone")
    finally:
        box.host("tmux", "-S", str(sock), "kill-server")
    assert not box.marker.exists()
    assert "gone" in str(result["out"])  # the host's /tmp is not there at all


@needs_bwrap
def test_the_sandbox_temp_dir_and_a_workspace_in_tmp_stay_usable(box: Box) -> None:
    result = box.sandboxed('echo t > "$TMPDIR/t" && cat "$TMPDIR/t" && echo w > made.txt && ls /dev/shm && echo done')
    assert "t\n" in str(result["out"]) and "done" in str(result["out"])
    assert (box.workspace / "made.txt").read_text() == "w\n"
    assert (box.workspace / "made.txt").stat().st_uid == box.uid


@needs_bwrap
def test_a_worktrees_git_file_cannot_be_pointed_elsewhere(box: Box, base: Path) -> None:
    main = base / "main"
    main.mkdir()
    os.chown(main, box.uid, box.uid)
    box.host("git", "init", "-q", cwd=main)
    box.host("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one", cwd=main)
    assert box.host("git", "worktree", "add", "-q", str(box.workspace), cwd=main).returncode == 0
    pointer = (box.workspace / ".git").read_text()
    result = box.sandboxed(
        "cp -a $(sed 's/gitdir: //' .git) evilgit; "
        f"printf '{box.fsmonitor()}' >> evilgit/config; echo 'gitdir: ./evilgit' > .git; "
        "mv .git .git-o; echo 'gitdir: ./evilgit' > .git; echo x > $(sed 's/gitdir: //' .git-o)/commondir"
    )
    assert (box.workspace / ".git").read_text() == pointer, result["out"]
    box.after()
    assert not box.marker.exists()


@needs_bwrap
def test_links_in_run_that_lead_out_of_it_still_work(box: Box) -> None:
    # NixOS keeps the whole system behind /run/current-system: a private /run must not take it away.
    link = Path("/run") / f"kimicode-test-{uuid.uuid4().hex[:8]}"
    link.symlink_to("/usr/bin")
    try:
        result = box.sandboxed(f"{link}/env true && echo ran")
    finally:
        link.unlink()
    assert "ran" in str(result["out"]), result["out"]


@needs_bwrap
def test_a_protected_folders_parent_that_links_out_of_the_workspace_stays_read_only(box: Box) -> None:
    elsewhere = box.outside / "github"
    elsewhere.mkdir()
    os.chown(elsewhere, box.uid, box.uid)
    (box.workspace / ".github").symlink_to(elsewhere)
    box.sandboxed(f"touch {elsewhere}/planted .github/planted2")
    assert list(elsewhere.iterdir()) == []
