"""The bubblewrap command line for one sandboxed command, as a pure function of what the sandbox is.

``sandbox.py`` looks at the machine (which protected paths exist, where the secrets are, which user runs
kimicode) and fills a ``BwrapSpec``; ``bwrap_argv`` turns it into the exact arguments, without touching the
file system, so that every defence can be read here and tested without running bubblewrap.

Order matters to bubblewrap (a later mount covers an earlier one), so the arguments come in layers:
1. the host's file system read-only, a private ``/dev`` (its own ``/dev/shm``) and ``/proc``;
2. private, empty ``/tmp``, ``/run`` (and ``$XDG_RUNTIME_DIR`` where it lies elsewhere): every unix socket
   a host program made there (tmux, ssh-agent, D-Bus, docker) is out of reach — a read-only mount does
   not stop ``connect()``, only an absent path does;
3. what stays visible in them read-only (a repository above a workspace that lies in ``/tmp``, the file
   a ``/etc/resolv.conf`` link leads to), links that lead out of them, and the sockets the user named;
4. the private temporary directory and the writable roots;
5. inside the writable roots: folders bound over themselves so that they cannot be renamed (a mount point
   cannot be: ``rename(2)`` fails with EBUSY), then the protected paths read-only — themselves mount
   points, so neither they nor anything in them can be renamed, replaced or written;
6. secrets hidden: folders emptied, files replaced by ``/dev/null``;
7. namespaces: a user namespace with every capability dropped (as root too: no ``mount``, ``umount`` or
   ``chroot`` inside, and no nested user namespace to get them back), no network unless allowed, a PID
   namespace whose init dies with kimicode, a new session (no way back to the terminal).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Where host programs put their sockets; each becomes an empty tmpfs inside the sandbox.
PRIVATE_DIRS = ("/tmp", "/run", "/var/run")


@dataclass(frozen=True)
class BwrapSpec:
    program: str  # the bwrap executable
    cwd: Path  # where the command starts
    temp_dir: Path  # kimicode's private temporary directory for commands: writable
    uid: int  # the user (and group) the command runs as inside its user namespace: kimicode's own
    gid: int
    network: bool = False  # the command may use the network
    writable: tuple[Path, ...] = ()  # writable roots (the workspace in "workspace-write" mode)
    immovable: tuple[Path, ...] = ()  # folders in writable roots that must not be renamed (bound over themselves)
    protected: tuple[Path, ...] = ()  # read-only inside writable roots (each exists on the host)
    visible: tuple[Path, ...] = ()  # read-only, kept visible where a private directory would hide them
    sockets: tuple[Path, ...] = ()  # host unix sockets the user allows inside
    hidden_dirs: tuple[Path, ...] = ()  # secret folders: empty inside
    hidden_files: tuple[Path, ...] = ()  # secret files: /dev/null inside
    private_dirs: tuple[Path, ...] = tuple(Path(p) for p in PRIVATE_DIRS)  # tmpfs inside (real folders only)
    runtime_dir: Path | None = None  # $XDG_RUNTIME_DIR: an empty private folder inside
    userns: bool = True  # a user namespace (not where a setuid bubblewrap cannot make one)
    disable_userns: bool = True  # no nested user namespace (bubblewrap 0.8 and later)
    # Symbolic links in the private folders that lead out of them, made again inside: NixOS keeps the whole
    # system behind /run/current-system. (link, target)
    links: tuple[tuple[Path, str], ...] = ()


def bwrap_argv(spec: BwrapSpec) -> list[str]:
    """The bubblewrap arguments up to (not including) the ``--`` before the command."""
    args = [spec.program, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    private = list(spec.private_dirs)
    if spec.runtime_dir is not None and not _under(spec.runtime_dir, private):
        private.append(spec.runtime_dir)
    for path in private:
        args += ["--tmpfs", str(path)]
    if spec.runtime_dir is not None:
        args += ["--perms", "0700", "--dir", str(spec.runtime_dir)]
    for link, target in spec.links:
        args += ["--symlink", target, str(link)]
    for path in spec.visible:
        args += ["--ro-bind", str(path), str(path)]
    for path in spec.sockets:
        args += ["--bind", str(path), str(path)]
    args += ["--bind", str(spec.temp_dir), str(spec.temp_dir)]
    # A writable root inside a protected path (a swarm sub-agent's worktree under .git) comes after that
    # path's read-only mount, which would cover it, and its own protected paths after it.
    inner = [w for w in spec.writable if any(w != p and _under(w, [p]) for p in spec.protected)]
    outer = [w for w in spec.writable if w not in inner]
    for layer in (outer, inner):
        owners = {p: _owner(p, spec.writable, inner) for p in (*spec.immovable, *spec.protected)}
        mine = [p for p, owner in owners.items() if owner in layer or (owner is None and layer is outer)]
        for path in layer:
            args += ["--bind", str(path), str(path)]
        for path in spec.immovable:
            if path in mine:
                args += ["--bind", str(path), str(path)]
        for path in spec.protected:
            if path in mine:
                args += ["--ro-bind", str(path), str(path)]
    # A secret in a private directory is out of sight already, unless something around it is bound again.
    bound = [*spec.visible, *spec.writable, spec.temp_dir]
    for path in _shown(spec.hidden_dirs, private, bound):
        args += ["--tmpfs", str(path), "--remount-ro", str(path)]
    for path in _shown(spec.hidden_files, private, bound):
        args += ["--ro-bind", "/dev/null", str(path)]
    if not spec.network:
        args.append("--unshare-net")
    set_env, unset = sandbox_env(spec)
    for name, value in set_env.items():
        args += ["--setenv", name, value]
    for name in unset:
        args += ["--unsetenv", name]
    # Root outside is nobody special inside: a user namespace mapping kimicode's own ids, no capabilities
    # (bubblewrap keeps them for root unless told), and no nested user namespace to win them back.
    if spec.userns:
        args += ["--unshare-user", "--uid", str(spec.uid), "--gid", str(spec.gid)]
        args += ["--disable-userns"] if spec.disable_userns else []
    args += ["--cap-drop", "ALL", "--unshare-ipc"]
    # A PID namespace whose init dies with bwrap (and bwrap with kimicode): nothing outlives the command.
    # --new-session: no way back to a terminal (TIOCSTI); the kill still reaches everything through
    # the namespace, since killing the outer bwrap takes the namespace's init with it.
    args += ["--unshare-pid", "--die-with-parent", "--new-session", "--chdir", str(spec.cwd)]
    return args


def sandbox_env(spec: BwrapSpec) -> tuple[dict[str, str], tuple[str, ...]]:
    """(variables set, variables removed) in a sandboxed command's environment."""
    tmp = str(spec.temp_dir)
    # Caches under ~/.cache are read-only here; a cold private cache beats a build tool failing (go, pip).
    values = {"TMPDIR": tmp, "TMP": tmp, "TEMP": tmp, "XDG_CACHE_HOME": f"{tmp}/.cache"}
    return values, ("SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS")


def _under(path: Path, roots: Iterable[Path]) -> bool:
    inside = str(path)
    return any(inside == str(root) or inside.startswith(str(root).rstrip("/") + "/") for root in roots)


def _owner(path: Path, writable: Iterable[Path], inner: list[Path]) -> Path | None:
    """The writable root whose layer mounts ``path``: the innermost one it lies in (or is)."""
    roots = [w for w in writable if _under(path, [w]) and (path != w or w not in inner)]
    return max(roots, key=lambda w: len(w.parts), default=None)


def _shown(paths: Iterable[Path], private: list[Path], bound: list[Path]) -> list[Path]:
    return [p for p in paths if not _under(p, private) or _under(p, bound)]
