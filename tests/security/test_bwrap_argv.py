"""The bubblewrap command line, one invariant per test, without running bubblewrap (bwrap_argv is pure)."""

from __future__ import annotations

from pathlib import Path

from kimicode.security.bwrap_argv import PRIVATE_DIRS, BwrapSpec, bwrap_argv

WS = Path("/home/u/proj")
TMP = Path("/tmp/kimicode-sandbox-x")


def spec(**changes: object) -> BwrapSpec:
    base: dict[str, object] = {
        "program": "/usr/bin/bwrap",
        "cwd": WS,
        "temp_dir": TMP,
        "uid": 1000,
        "gid": 1000,
        "writable": (WS,),
        "immovable": (WS / ".github",),
        "protected": (WS / ".git", WS / ".mcp.json", WS / ".github" / "workflows"),
        "hidden_dirs": (Path("/home/u/.ssh"),),
        "hidden_files": (WS / ".env",),
    }
    base.update(changes)
    return BwrapSpec(**base)  # type: ignore[arg-type]


def mounts(argv: list[str], option: str) -> list[str]:
    """The targets of every ``option SRC DEST`` (or ``option DEST`` for --tmpfs/--remount-ro)."""
    found = []
    for i, arg in enumerate(argv):
        if arg == option:
            found.append(argv[i + 1] if option in ("--tmpfs", "--remount-ro", "--dir") else argv[i + 2])
    return found


def position(argv: list[str], option: str, target: Path | str) -> int:
    """Where the mount of ``target`` by ``option`` comes (later mounts cover earlier ones)."""
    for i, arg in enumerate(argv):
        if arg == option:
            dest = argv[i + 1] if option in ("--tmpfs", "--remount-ro") else argv[i + 2]
            if dest == str(target):
                return i
    raise AssertionError(f"no {option} {target} in {argv}")


def test_the_host_is_read_only_below_everything_else() -> None:
    argv = bwrap_argv(spec())
    assert argv[:4] == ["/usr/bin/bwrap", "--ro-bind", "/", "/"]
    assert mounts(argv, "--bind").count(str(WS)) == 1


def test_the_whole_git_folder_is_read_only_over_the_writable_workspace() -> None:
    argv = bwrap_argv(spec())
    assert position(argv, "--ro-bind", WS / ".git") > position(argv, "--bind", WS)
    # .git itself is a mount point: it cannot be renamed away with the read-only mount left behind.
    assert str(WS / ".git") not in mounts(argv, "--bind")


def test_protected_paths_are_read_only_mount_points_and_their_parents_cannot_move() -> None:
    argv = bwrap_argv(spec())
    for path in (WS / ".mcp.json", WS / ".github" / "workflows"):
        assert position(argv, "--ro-bind", path) > position(argv, "--bind", WS)
    # .github bound over itself (writable) after the workspace and before what it contains.
    assert position(argv, "--bind", WS) < position(argv, "--bind", WS / ".github")
    assert position(argv, "--bind", WS / ".github") < position(argv, "--ro-bind", WS / ".github" / "workflows")


def test_host_socket_folders_are_private_and_only_named_sockets_come_back() -> None:
    sock = Path("/run/user/1000/ssh-agent.sock")
    argv = bwrap_argv(spec(sockets=(sock,), runtime_dir=Path("/run/user/1000")))
    for folder in PRIVATE_DIRS:
        assert folder in mounts(argv, "--tmpfs")
    assert position(argv, "--tmpfs", "/run") < position(argv, "--bind", sock)
    assert ["--perms", "0700", "--dir", "/run/user/1000"] == argv[argv.index("--dir") - 2 : argv.index("--dir") + 2]
    assert "--dev" in argv and argv[argv.index("--dev") + 1] == "/dev"  # its own /dev/shm
    assert "--unshare-ipc" in argv
    for name in ("SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS"):
        assert argv[argv.index(name) - 1] == "--unsetenv"


def test_a_runtime_dir_outside_the_private_folders_is_private_too() -> None:
    argv = bwrap_argv(spec(runtime_dir=Path("/var/xdg/1000")))
    assert "/var/xdg/1000" in mounts(argv, "--tmpfs")


def test_the_private_tmp_keeps_kimicodes_temp_dir_and_a_workspace_in_tmp() -> None:
    ws = Path("/tmp/pytest/ws")
    argv = bwrap_argv(spec(writable=(ws,), cwd=ws, protected=(ws / ".git",), immovable=(), hidden_files=(ws / ".env",)))
    tmpfs = position(argv, "--tmpfs", "/tmp")
    assert tmpfs < position(argv, "--bind", TMP) and tmpfs < position(argv, "--bind", ws)
    assert tmpfs < position(argv, "--ro-bind", ws / ".git") and tmpfs < position(argv, "--ro-bind", ws / ".env")
    assert argv[argv.index("TMPDIR") + 1] == str(TMP)


def test_secrets_in_a_private_folder_are_not_mounted_for_nothing() -> None:
    argv = bwrap_argv(spec(hidden_files=(Path("/tmp/kimihome/config.toml"),)))
    assert "/tmp/kimihome/config.toml" not in mounts(argv, "--ro-bind")


def test_secrets_are_hidden_after_the_writable_roots() -> None:
    argv = bwrap_argv(spec())
    assert position(argv, "--tmpfs", "/home/u/.ssh") > position(argv, "--bind", WS)
    assert position(argv, "--ro-bind", WS / ".env") > position(argv, "--bind", WS)
    assert argv[argv.index("--ro-bind", position(argv, "--ro-bind", WS / ".env")) + 1] == "/dev/null"


def test_every_capability_is_dropped_in_a_user_namespace_as_root_too() -> None:
    argv = bwrap_argv(spec(uid=0, gid=0))
    assert "--unshare-user" in argv and "--disable-userns" in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--cap-add" not in argv
    # kimicode's own ids inside, so files the command makes belong to the user who runs kimicode.
    assert argv[argv.index("--uid") + 1] == "0" and argv[argv.index("--gid") + 1] == "0"


def test_network_pid_and_session_namespaces() -> None:
    argv = bwrap_argv(spec())
    assert {"--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"} <= set(argv)
    assert "--unshare-net" not in bwrap_argv(spec(network=True))
    assert argv[-2:] == ["--chdir", str(WS)]


def test_an_older_bubblewrap_without_disable_userns_still_drops_every_capability() -> None:
    argv = bwrap_argv(spec(uid=0, gid=0, disable_userns=False))
    assert "--disable-userns" not in argv
    assert "--unshare-user" in argv and argv[argv.index("--cap-drop") + 1] == "ALL"


def test_links_out_of_the_private_folders_are_made_again_after_them() -> None:
    link = (Path("/run/current-system"), "/nix/store/abc-system")
    argv = bwrap_argv(spec(links=(link,), visible=(Path("/run/systemd/resolve/stub-resolv.conf"),)))
    at = argv.index("--symlink")
    assert argv[at : at + 3] == ["--symlink", "/nix/store/abc-system", "/run/current-system"]
    assert position(argv, "--tmpfs", "/run") < at
    assert position(argv, "--tmpfs", "/run") < position(argv, "--ro-bind", "/run/systemd/resolve/stub-resolv.conf")


def test_a_writable_worktree_inside_the_read_only_git_is_mounted_after_it() -> None:
    worktree = WS / ".git" / "kimicode-worktrees" / "sub-1"
    argv = bwrap_argv(spec(writable=(WS, worktree), protected=(WS / ".git", worktree / ".git", WS / ".mcp.json")))
    assert position(argv, "--bind", WS) < position(argv, "--ro-bind", WS / ".git")
    assert position(argv, "--ro-bind", WS / ".git") < position(argv, "--bind", worktree)
    assert position(argv, "--bind", worktree) < position(argv, "--ro-bind", worktree / ".git")
    assert position(argv, "--ro-bind", WS / ".mcp.json") < position(argv, "--bind", worktree)


def test_without_a_user_namespace_every_capability_is_still_dropped() -> None:
    argv = bwrap_argv(spec(uid=0, gid=0, userns=False, disable_userns=False))
    assert "--unshare-user" not in argv and "--uid" not in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
