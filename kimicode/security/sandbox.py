"""The OS sandbox for the model's shell commands: bubblewrap on Linux, sandbox-exec (Seatbelt) on macOS.

Inside the sandbox (modes "workspace-write" and "read-only"):
- the whole file system is read-only; "workspace-write" makes the workspace writable again;
- a private temporary directory (one per kimicode process, removed at exit) is writable, and TMPDIR, TMP
  and TEMP point at it (``/tmp`` itself stays read-only: other programs' files live there), as does
  XDG_CACHE_HOME (``~/.cache`` is read-only like the rest of the home folder);
- protected paths in the workspace stay read-only: ``.kimicode/``, ``.mcp.json``, editor and agent folders,
  ``.github/workflows/``, and inside ``.git/`` the two places a write turns into code that runs later
  outside the sandbox: ``.git/hooks/`` and ``.git/config`` (core.hooksPath, core.fsmonitor, aliases,
  filter drivers). The rest of ``.git/`` stays writable so that ``git add`` and ``git commit`` work;
- secret paths are hidden: credential folders become empty, credential files cannot be opened (permission
  denied), and neither can the ``.env*`` files at the top of the workspace (templates such as
  ``.env.example`` excepted);
- well-known local sockets that hand out more power (the SSH agent, Docker) are hidden;
- the network is cut (a new network namespace) unless ``sandbox_network = true`` or the call escalated;
- bubblewrap runs the command in a new PID namespace whose init dies with the command: whatever it starts
  (``&``, ``setsid``, double forks) ends when the command ends.

Not covered: a protected path that does not exist yet can be created (a new ``.kimicode/config.toml`` is
caught by workspace trust, which fingerprints it); ``.env*`` files below the top level are visible; unix
sockets other than the ones listed stay reachable; reads outside the secret paths are allowed (the
sandbox limits writes and the network, not what a command may read). The macOS profile is written from
Apple's documented Seatbelt rules but is not tested here, and has no PID namespace: background jobs there
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

from kimicode.security.paths import HOME_SECRETS, KIMICODE_SECRETS, is_env_file

MODES = ("read-only", "workspace-write", "off")

# Workspace paths a sandboxed command may read but not change (see the module docstring for .git).
PROTECTED = (
    ".kimicode",
    ".git/hooks",
    ".git/config",
    ".mcp.json",
    ".vscode",
    ".cursor",
    ".zed",
    ".claude",
    ".codex",
    ".agents",
    ".github/workflows",
)
# Secret paths (one list with the policy's, kimicode/security/paths.py): below the user's home, folders
# are emptied and files blanked inside the sandbox; in KIMICODE_HOME, the user's key and trust decisions.
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
    # The repository's .git folder when the workspace is a subfolder of a repository: writable too, so that
    # commits work, with the same hooks/config protection.
    git_dir: Path | None = None
    _temp_dir: Path | None = None

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
        writable = self._writable_roots(cwd)
        if self.backend == "seatbelt":
            profile = seatbelt_profile(writable, self.temp_dir, self._protected(writable), self._secrets(), network)
            return [self.program, "-p", profile, *argv]  # the caller adds env() to the environment
        return self._bwrap_args(writable, cwd, network) + ["--", *argv]

    # -- what the sandbox opens and closes -----------------------------------------------------------

    def _writable_roots(self, cwd: Path) -> list[Path]:
        if self.mode != "workspace-write":
            return []
        roots: list[Path] = []
        git = [self.git_dir] if self.git_dir is not None else []
        for path in (self.workspace, cwd, *self.extra_writable, *git):
            real = _real(path)
            if real is not None and real.is_dir() and not any(_within(real, root) for root in roots):
                roots = [root for root in roots if not _within(root, real)] + [real]
        return roots

    def _protected(self, roots: Sequence[Path]) -> list[Path]:
        found: list[Path] = []
        for root in roots:
            for rel in PROTECTED:
                real = _existing(root / rel)
                # A protected name that points outside the writable roots is read-only already.
                if real is not None and any(_within(real, r) for r in roots):
                    found.append(real)
        if self.git_dir is not None and self.mode == "workspace-write":
            found += [p for p in (_existing(self.git_dir / "hooks"), _existing(self.git_dir / "config")) if p is not None]
        return found

    def _env_files(self) -> list[Path]:
        found: list[Path] = []
        for root in {_real(self.workspace), *(_real(p) for p in self.extra_writable)}:
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
        found = [_existing(user / name) for name in HOME_SECRETS]
        dirs = [p for p in found if p is not None and p.is_dir()]
        files = [p for p in found if p is not None and not p.is_dir()]
        files += [_existing(self.home / f) for f in SECRET_HOME_FILES]
        files += self._env_files()
        sock = os.environ.get("SSH_AUTH_SOCK")
        files += [_existing(Path(s)) for s in (*SOCKETS, *([sock] if sock else []))]
        blanks = [p for p in files if p is not None and not p.is_dir()]
        return dirs, blanks

    def _bwrap_args(self, writable: list[Path], cwd: Path, network: bool) -> list[str]:
        tmp = str(self.temp_dir)
        args = [self.program, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--bind", tmp, tmp]
        for root in writable:
            args += ["--bind", str(root), str(root)]
        for path in self._protected(writable):
            args += ["--ro-bind", str(path), str(path)]
        dirs, blanks = self._secrets()
        for path in dirs:
            args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        for path in blanks:
            args += ["--ro-bind", "/dev/null", str(path)]
        if not network:
            args.append("--unshare-net")
        for name in ("TMPDIR", "TMP", "TEMP"):
            args += ["--setenv", name, tmp]
        # Caches under ~/.cache are read-only here; a cold private cache beats a build tool failing (go, pip).
        args += ["--setenv", "XDG_CACHE_HOME", f"{tmp}/.cache"]
        args += ["--unsetenv", "SSH_AUTH_SOCK"]
        # A PID namespace whose init dies with bwrap (and bwrap with kimicode): nothing outlives the command.
        # --new-session: no way back to a terminal (TIOCSTI); the kill still reaches everything through
        # the namespace, since killing the outer bwrap takes the namespace's init with it.
        args += ["--unshare-pid", "--die-with-parent", "--new-session", "--chdir", str(cwd)]
        return args

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


def seatbelt_profile(
    writable: Sequence[Path], temp: Path, protected: Sequence[Path], secrets: tuple[list[Path], list[Path]], network: bool
) -> str:
    """A sandbox-exec profile with the same shape as the bubblewrap arguments (untested: no macOS here)."""

    def q(path: Path) -> str:
        return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["(version 1)", "(allow default)", "(deny file-write*)"]
    allowed = [f"(subpath {q(p)})" for p in (*writable, temp)]
    lines.append(f'(allow file-write* {" ".join(allowed)} (literal "/dev/null") (literal "/dev/tty"))')
    if protected:
        lines.append("(deny file-write* " + " ".join(f"(subpath {q(p)})" for p in protected) + ")")
    dirs, files = secrets
    hidden = [f"(subpath {q(p)})" for p in dirs] + [f"(literal {q(p)})" for p in files]
    if hidden:
        lines.append("(deny file-read* file-write* " + " ".join(hidden) + ")")
    if not network:
        lines.append("(deny network*)")
        lines.append('(allow network* (remote unix-socket (path-literal "/private/var/run/mDNSResponder")))')
    return "\n".join(lines)


def _real(path: Path) -> Path | None:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None


def _existing(path: Path) -> Path | None:
    """The real path of ``path`` when it exists (the common case, a missing path, costs one stat)."""
    if not os.path.lexists(path):
        return None
    real = _real(path)
    return real if real is not None and real.exists() else None


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


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


_BWRAP_PROBE = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent")


def detect_sandbox(
    mode: str,
    network: bool,
    workspace: Path,
    home: Path,
    extra_writable: Iterable[Path] = (),
) -> Sandbox:
    """The sandbox this machine can give for ``mode``; mode "off" (with ``unavailable`` said) where none works."""
    if mode not in MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}")
    base = {
        "network": network,
        "workspace": workspace,
        "home": home,
        "extra_writable": tuple(extra_writable),
        "git_dir": _git_dir_above(workspace),
    }
    if mode == "off":
        return Sandbox(mode="off", backend="none", **base)  # type: ignore[arg-type]
    why = ""
    if sys.platform.startswith("linux"):
        program = shutil.which("bwrap")
        if program is None:
            why = "bubblewrap (bwrap) is not installed"
        else:
            probe = _BWRAP_PROBE if network else (*_BWRAP_PROBE, "--unshare-net")
            why = _probe(program, probe)
            if not why:
                return Sandbox(mode=mode, backend="bwrap", program=program, **base)  # type: ignore[arg-type]
    elif sys.platform == "darwin":
        program = shutil.which("sandbox-exec")
        if program is None:
            why = "sandbox-exec is not available"
        else:
            why = _probe(program, ("-p", "(version 1)(allow default)"))
            if not why:
                return Sandbox(mode=mode, backend="seatbelt", program=program, **base)  # type: ignore[arg-type]
    else:
        why = f"no sandbox on {sys.platform}"
    return Sandbox(mode="off", backend="none", unavailable=why, **base)  # type: ignore[arg-type]


def _git_dir_above(workspace: Path) -> Path | None:
    """The .git folder of the repository the workspace lies in, when its top is above the workspace."""
    start = _real(workspace)
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
