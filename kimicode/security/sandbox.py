"""The OS sandbox for the model's shell commands: bubblewrap on Linux, sandbox-exec (Seatbelt) on macOS.

Inside the sandbox (modes "workspace-write" and "read-only"), as root and as any other user alike:
- the whole file system is read-only; "workspace-write" makes the workspace writable again;
- ``/tmp``, ``/run`` (``/var/run``), ``$XDG_RUNTIME_DIR`` and ``/dev/shm`` are private and empty: the unix
  sockets host programs keep there (tmux, ssh-agent, D-Bus, docker, X11) cannot be reached — a read-only
  mount does not stop ``connect()``. A socket the user names in ``sandbox_sockets`` is put back. kimicode's
  private temporary directory (one per process, removed at exit) is writable, and TMPDIR, TMP, TEMP and
  XDG_CACHE_HOME point into it; a workspace that lies in ``/tmp`` is bound in as usual;
- protected paths in the workspace are read-only mount points: ``.git`` as a whole (folder or file, and
  where a ``.git`` file leads when that is in the workspace), ``.kimicode/``, ``.mcp.json``, editor and agent
  folders, ``.github/workflows/``. A mount point cannot be renamed, so a protected folder cannot be moved
  aside with its protection and rebuilt; ``.github`` is bound over itself for the same reason. One that
  does not exist yet gets an empty placeholder folder to mount over (placeholders.py), so it cannot be
  created. ``git status``, ``diff`` and ``log`` work; commits do not: kimicode's checkpoints make them, or
  the command asks to run outside the sandbox;
- secret paths are hidden: credential folders become empty, credential files cannot be opened (permission
  denied), and neither can the ``.env*`` files at the top of the workspace (templates such as
  ``.env.example`` excepted);
- the command runs in a user namespace with kimicode's own uid and gid and no capabilities (root outside
  is powerless inside: no ``mount``, ``umount``, ``chroot``, no nested user namespace); files it makes
  belong to the user running kimicode;
- the network is cut (a new network namespace, which also hides abstract unix sockets) unless
  ``sandbox_network = true`` or the call escalated;
- bubblewrap runs the command in a new PID namespace whose init dies with the command: whatever it starts
  (``&``, ``setsid``, double forks) ends when the command ends. The bash tool reuses one sandbox for
  many commands where nothing about it changed (sandbox_session.py): its supervisor ends everything but
  itself after each command, so the same holds.

The exact bubblewrap arguments are built by a pure function in bwrap_argv.py from what this module finds.

Not covered: ``.env*`` files below the top level are visible; unix sockets outside the private folders
(say in the home folder) stay reachable, and so do abstract sockets when the network is allowed; a
protected name that is a symbolic link can be replaced; a repository made in a subfolder (``git init
sub``) is the host git's to distrust; reads outside the secret paths are allowed (the sandbox limits
writes and the network, not what a command may read). The macOS profile is written from Apple's
documented Seatbelt rules but is not tested here, and has no PID namespace: background jobs there
are ended by kimicode's own clean-up at the end of the session.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.security import hostfiles as H
from kimicode.security.bwrap_argv import BwrapSpec, bwrap_argv
from kimicode.security.paths import HOME_SECRETS, KIMICODE_SECRETS, is_env_file
from kimicode.security.placeholders import Placeholders
from kimicode.security.seatbelt import seatbelt_profile

MODES = ("read-only", "workspace-write", "off")

# Workspace paths a sandboxed command may read but neither change, move nor create.
PROTECTED = (
    ".git",
    ".kimicode",
    ".mcp.json",
    ".vscode",
    ".cursor",
    ".zed",
    ".claude",
    ".codex",
    ".agents",
    ".gemini",
    ".github/workflows",
)
# Secret paths (one list with the policy's, kimicode/security/paths.py): below the user's home, folders
# are emptied and files blanked inside the sandbox; in KIMICODE_HOME, the user's key, trust decisions and
# sign-in tokens.
SECRET_HOME_FILES = KIMICODE_SECRETS
# Local sockets that would let a contained command act with more power than the sandbox gives it.
SOCKETS = ("/run/docker.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock", "/run/podman/podman.sock")

PROBE_TIMEOUT_S = 10.0


@dataclass
class Sandbox:
    mode: str  # effective: "read-only" | "workspace-write" | "off"
    backend: str  # "bwrap" | "seatbelt" | "none"
    network: bool  # sandbox_network: commands may use the network
    unavailable: str = ""  # why no sandbox works here (said once), "" when it works
    workspace: Path = field(default_factory=Path.cwd)
    home: Path = field(default_factory=lambda: Path.home() / ".kimicode")  # KIMICODE_HOME
    extra_writable: tuple[Path, ...] = ()
    program: str = ""  # the bwrap / sandbox-exec executable
    # The repository's .git folder when the workspace is a subfolder of a repository: read-only like all
    # outside the workspace, and kept visible (the whole repository) where the workspace lies in /tmp.
    git_dir: Path | None = None
    # The workspace bound read-only too, whatever the mode: for commands allowed as read-only where nothing
    # may write (headless without -y, plan mode), so a misjudged command cannot write.
    read_only_everything: bool = False
    sockets: tuple[Path, ...] = ()  # host unix sockets the user allows inside (sandbox_sockets)
    userns: bool = True  # bubblewrap can make a user namespace here
    disable_userns: bool = True  # bubblewrap knows --disable-userns (0.8 and later)
    _temp_dir: Path | None = None
    _placeholders: Placeholders = field(default_factory=Placeholders, repr=False)
    # Session-long sandboxes kept for reuse (sandbox_session.Pool), made on first use.
    sessions: Any = field(default=None, repr=False, compare=False)
    # Descriptions kept for reuse while nothing they depend on changed (described.py), made on first use.
    descriptions: Any = field(default=None, repr=False, compare=False)
    # ((cwd, allow_network), BwrapSpec) a session sandbox could not serve, handed to the ``wrap`` that
    # follows in the same turn of the event loop (sandbox_session.py), which then need not work it out
    # again; dropped at the end of that turn, so never used for a later command.
    handed: Any = field(default=None, repr=False, compare=False)

    @property
    def active(self) -> bool:
        return self.mode != "off" and self.backend != "none"

    @property
    def temp_dir(self) -> Path:
        """The private temporary directory, created on first use and removed when kimicode exits."""
        if self._temp_dir is None:
            path = Path(tempfile.mkdtemp(prefix="kimicode-sandbox-")).resolve()
            atexit.register(shutil.rmtree, path, True)
            self._temp_dir = path
        return self._temp_dir

    def wrap(self, argv: list[str], cwd: Path, *, allow_network: bool = False) -> list[str]:
        """The command line that runs ``argv`` in ``cwd`` inside the sandbox (``argv`` itself when off)."""
        if not self.active:
            return list(argv)
        network = self.network or allow_network
        handed, self.handed = self.handed, None
        if handed is not None and handed[0] == (cwd, allow_network) and self.backend == "bwrap":
            return bwrap_argv(handed[1]) + ["--", *argv]
        writable = self._writable_roots(cwd)
        if self.backend == "seatbelt":
            # Seatbelt denies by path: a protected path needs no mount point to stay uncreatable.
            protected = [root / rel for root in writable for rel in PROTECTED]
            profile = seatbelt_profile(writable, self.temp_dir, protected, self._secrets(), network)
            return [self.program, "-p", profile, *argv]  # the caller adds env() to the environment
        return bwrap_argv(self.bwrap_spec(writable, cwd, network)) + ["--", *argv]

    def spec_for(self, cwd: Path, *, allow_network: bool = False) -> BwrapSpec:
        """What bubblewrap's sandbox is for a command in ``cwd`` (the machine as it is now)."""
        return self.bwrap_spec(self._writable_roots(cwd), cwd, self.network or allow_network)

    # -- what the sandbox opens and closes -----------------------------------------------------------

    def _writable_roots(self, cwd: Path) -> list[Path]:
        if self.mode != "workspace-write" or self.read_only_everything:
            return []
        roots: list[Path] = []
        for path in (self.workspace, cwd, *self.extra_writable):
            real = H.real(path)
            if real is None or not os.path.isdir(real):
                continue
            # A folder inside another root's protected path (a swarm sub-agent's worktree under .git) is a
            # root of its own: writable, with its own protected paths, although the path around it is not.
            if not any(H.within(real, root) and not _in_protected(real, root) for root in roots):
                roots = [root for root in roots if not (H.within(root, real) and not _in_protected(root, real))]
                roots.append(real)
        return roots

    def _protected(self, roots: Sequence[Path]) -> tuple[list[Path], list[Path]]:  # bubblewrap's
        """(folders to make immovable, paths to make read-only) in the writable ``roots``.

        A protected path that does not exist yet gets an empty folder as its mount point (made here, removed
        when kimicode ends if still empty), so that the command cannot create it.
        """
        immovable: list[Path] = []
        protected: list[Path] = []
        for root in roots:
            # In a subfolder of a repository a new .git is a nested repository like any other folder's: no
            # placeholder, which would make the subfolder look like the top of a repository to kimicode.
            in_repo = (self.git_dir if root == H.real(self.workspace) else _git_dir_above(root)) is not None
            for rel in PROTECTED:
                path = root / rel
                if rel == ".git" and in_repo and not os.path.lexists(path):
                    continue
                for parent in reversed(Path(rel).parents[:-1]):  # .github for .github/workflows
                    folder = self._placeholders.claim(root / parent)
                    # Bound writable over itself: only where it is writable anyway (not a link leading out).
                    if folder is not None and any(H.within(folder, r) for r in roots) and folder not in immovable:
                        immovable.append(folder)
                real = self._placeholders.claim(path)
                # A protected name that points outside the writable roots is read-only already.
                if real is not None and any(H.within(real, r) for r in roots) and real not in protected:
                    protected.append(real)
            protected += [p for p in H.git_file_targets(root / ".git") if any(H.within(p, r) for r in roots)]
        return immovable, protected

    def _env_files(self) -> list[Path]:
        found: list[Path] = []
        for root in {H.real(self.workspace), *(H.real(p) for p in self.extra_writable)}:
            if root is None:
                continue
            try:
                with os.scandir(root) as entries:
                    for entry in entries:
                        if is_env_file(entry.name) and entry.is_file():
                            found.append(Path(entry.path))
            except OSError:
                continue
        return found

    def _secrets(self) -> tuple[list[Path], list[Path]]:
        """(folders to empty, files to blank), only those that exist."""
        user = Path.home()
        found = [H.existing(user / name) for name in HOME_SECRETS]
        dirs = [p for p in found if p is not None and p.is_dir()]
        files: list[Path | None] = [p for p in found if p is not None and not p.is_dir()]
        found = [H.existing(self.home / name) for name in SECRET_HOME_FILES]
        dirs += [p for p in found if p is not None and p.is_dir()]
        files += [p for p in found if p is not None and not p.is_dir()]
        files += self._env_files()
        sock = os.environ.get("SSH_AUTH_SOCK")
        files += [H.existing(Path(s)) for s in (*SOCKETS, *([sock] if sock else []))]
        blanks = [p for p in files if p is not None and not p.is_dir()]
        return dirs, blanks

    def bwrap_spec(self, writable: list[Path], cwd: Path, network: bool) -> BwrapSpec:
        """What the sandbox is for one command, from the machine as it is now (see bwrap_argv.py)."""
        immovable, protected = self._protected(writable)
        dirs, blanks = self._secrets()
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        # The workspace (in read-only mode) and a repository above it stay readable where a private /tmp
        # would hide them; the whole repository, since git stops looking for .git at a file-system boundary.
        readable = [self.workspace, cwd, *self.extra_writable, *([self.git_dir.parent] if self.git_dir else [])]
        # So do the folders of PATH there (tools unpacked in /tmp), but never a whole private folder.
        readable += H.private_path_dirs(os.environ.get("PATH", ""))
        # And what kimicode itself runs inside (the port bridge's relay): this interpreter's environment and
        # kimicode's own files, read-only, where they lie in /tmp (a venv or a checkout there).
        readable += [Path(sys.prefix), Path(__file__).resolve().parent.parent]
        visible: list[Path] = []
        for path in readable:
            real = H.real(path)
            if real is None or real in H.private_dirs():
                continue
            if os.path.isdir(real) and H.under_private(real) and real not in visible:
                if not any(H.within(real, root) for root in writable):
                    visible.append(real)
        visible += H.hidden_system_files()
        return BwrapSpec(
            program=self.program,
            cwd=H.real(cwd) or cwd,
            temp_dir=self.temp_dir,
            uid=os.getuid(),
            gid=os.getgid(),
            network=network,
            writable=tuple(writable),
            immovable=tuple(immovable),
            protected=tuple(protected),
            visible=tuple(visible),
            sockets=tuple(p for p in (H.existing(s) for s in self.sockets) if p is not None),
            hidden_dirs=tuple(dirs),
            hidden_files=tuple(blanks),
            private_dirs=H.private_dirs(),
            runtime_dir=Path(runtime) if runtime.startswith("/") else None,
            userns=self.userns,
            disable_userns=self.disable_userns,
            links=H.links_out(),
        )

    def env(self) -> dict[str, str]:
        """Variables the caller adds for a sandboxed command (bwrap sets them itself; Seatbelt cannot)."""
        if not self.active or self.backend != "seatbelt":
            return {}
        tmp = str(self.temp_dir)
        return {"TMPDIR": tmp, "TMP": tmp, "TEMP": tmp, "XDG_CACHE_HOME": f"{tmp}/.cache"}

    def describe(self) -> str:
        if not self.active:
            return "off"
        net = "network on" if self.network else "no network"
        return f"{self.mode} ({self.backend}, {net})"


@functools.lru_cache(maxsize=None)
def _probe(program: str, args: tuple[str, ...]) -> str:
    """Run the sandbox once with ``true``: "" when it works, else why not (one line)."""
    try:
        proc = subprocess.run(
            [program, *args, "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{program} does not start ({exc})"
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"{program} fails here ({detail[-1] if detail else f'exit {proc.returncode}'})"
    return ""


_BWRAP_PROBE = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--cap-drop", "ALL", "--unshare-pid", "--die-with-parent")
# From the strongest to the weakest that still drops every capability: a user namespace without nested ones
# (bubblewrap 0.8+), a user namespace (older bubblewrap), none (a setuid bubblewrap where the kernel forbids
# unprivileged user namespaces: as root, no capabilities; as a user, none to begin with).
_USERNS_CHOICES = ((True, True), (True, False), (False, False))  # (user namespace, --disable-userns)


def detect_sandbox(
    mode: str,
    network: bool,
    workspace: Path,
    home: Path,
    extra_writable: Iterable[Path] = (),
    sockets: Iterable[Path] = (),
) -> Sandbox:
    """The sandbox this machine can give for ``mode``; mode "off" (with ``unavailable`` said) where none works."""
    if mode not in MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}")
    make = functools.partial(
        Sandbox,
        network=network,
        workspace=workspace,
        home=home,
        extra_writable=tuple(extra_writable),
        sockets=tuple(sockets),
        git_dir=_git_dir_above(workspace),
    )
    if mode == "off":
        return make(mode="off", backend="none")
    why = ""
    if sys.platform.startswith("linux"):
        program = shutil.which("bwrap")
        if program is None:
            why = "bubblewrap (bwrap) is not installed"
        else:
            probe = _BWRAP_PROBE if network else (*_BWRAP_PROBE, "--unshare-net")
            for userns, disable_userns in _USERNS_CHOICES:
                extra = ("--unshare-user",) * userns + ("--disable-userns",) * disable_userns
                problem = _probe(program, (*probe, *extra))
                if not problem:
                    return make(
                        mode=mode, backend="bwrap", program=program, userns=userns, disable_userns=disable_userns
                    )
                why = why or problem  # the strongest setting's reason is the one to tell
    elif sys.platform == "darwin":
        program = shutil.which("sandbox-exec")
        if program is None:
            why = "sandbox-exec is not available"
        else:
            why = _probe(program, ("-p", "(version 1)(allow default)"))
            if not why:
                return make(mode=mode, backend="seatbelt", program=program)
    else:
        why = f"no sandbox on {sys.platform}"
    return make(mode="off", backend="none", unavailable=why)


def _in_protected(path: Path, root: Path) -> bool:
    return path != root and any(H.within(path, root / rel) for rel in PROTECTED)


def _git_dir_above(workspace: Path) -> Path | None:
    """The .git folder of the repository the workspace lies in, when its top is above the workspace."""
    start = H.real(workspace)
    if start is None:
        return None
    for folder in start.parents:
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.exists():
            return None  # a worktree's .git file: its git dir is elsewhere; not opened up
    return None


def unavailable_notice(sandbox: Sandbox | None) -> str:
    """The one line a front end says when the sandbox asked for does not work here ("" otherwise)."""
    if sandbox is None or not sandbox.unavailable:
        return ""
    return f"no sandbox for commands: {sandbox.unavailable}; commands are asked for as without one"
