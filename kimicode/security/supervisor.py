"""The program that lives inside a session-long sandbox and runs the model's commands there, one at a time.

Started by sandbox_launch.py as the sandbox's PID 1 (``bwrap --as-pid-1``), from its code compiled there
(``python -I -S -c``): it reads no file of kimicode's inside the sandbox, and imports all it needs before
the first command, so nothing a command writes can change it. Its control channel is a unix socket pair
it got as stdin, kept on a descriptor no command inherits; it is not dumpable, so a command (same user,
no capability) can neither ptrace it nor open its ``/proc/1/fd``. As PID 1 of its namespace it cannot be
killed from inside (the kernel drops signals it has no handler for) and it adopts every orphan.

Per command (a request: the output pipe's writing end, passed as a descriptor, and the working folder,
argv and environment): the command starts in a session and process group of its own, stdin /dev/null,
stdout and stderr the host's pipe. When it exits, everything else in the namespace is killed and reaped
(what it started, however it detached) and the exit status goes back (a signal N reads as 128+N, as
bubblewrap reports it): the output is whole then. Then the private folders (``/tmp``, ``/run``,
``/dev``...) are put back as they were at start and System V IPC objects removed, off the reply's path;
a verdict follows, which the host reads before it sends the next command. What cannot be put back — a
private folder whose layout a command changed (a folder around a mount point renamed), or this
process's resource limits, CPU affinity or scheduling lowered by a command (``prlimit --pid 1``,
``taskset -p``), which later commands would inherit — makes the verdict say "retire": the host starts
a fresh sandbox for the next command.

Standard library only, nothing of kimicode; and of it the C modules under the usual ones (``_socket``,
``_signal``, ``_struct``, ``_ctypes``): their Python wrappers (enums, ``selectors``, ``subprocess``) cost
the sandbox's start more CPU time than the python it runs in (a session sandbox starts at a command's
second step, and MAX_LIVE of them for a swarm).
"""

import _signal
import _socket
import _stat
import _struct
import os
import resource
import sys

HEADER = _struct.Struct("!I")  # the request body's length; the output descriptor rides on it
# A command's reply comes in two messages: its exit status as soon as it and all it started are gone (its
# output is whole then), and the verdict once the sandbox is put back (1: retire, do not send another
# command), which the host reads before it sends the next one: the putting back is off the reply's path.
STATUS = _struct.Struct("!i")
VERDICT = _struct.Struct("!i")
READY = b"ready"
# The channel's timeout, so that CPython waits for the next request in poll() and only then calls recvmsg():
# a process asleep in recvmsg() on a unix socket is woken for nothing each time the other end reads what
# it sent (room to write is freed), and the host reads every reply while this process waits for the next
# request (a context switch, at worst the host put off, per read); a poll for input is not woken by that.
# Running into it only starts the wait again.
WAIT_S = 3600.0
IPC_TABLES = ("/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg")
IPCRM_FOLDERS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/run/current-system/sw/bin")


def snapshot(roots: list[str]) -> dict[str, int]:
    """(path -> inode) of everything in the private folders, not descending into other file systems (the
    binds in them: the workspace, the temporary folder, device nodes)."""
    seen: dict[str, int] = {}
    for root in roots:
        try:
            info = os.lstat(root)
        except OSError:
            continue
        seen[root] = info.st_ino
        _walk(root, info.st_dev, seen, None)
    return seen


def _walk(folder: str, device: int, seen: dict[str, int], before: dict[str, int] | None) -> int:
    """Record what is in ``folder`` into ``seen``; with ``before``, first remove what is not in it (what a
    command added). Returns how many entries of ``before`` were found again."""
    found = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if before is not None and entry.path not in before:
            _remove(entry.path, device)
            continue
        seen[entry.path] = entry.inode()
        found += 1
        try:
            # Only folders are looked at closer (d_type needs no stat): one on another device is a mount.
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_dev == device:
                found += _walk(entry.path, device, seen, before)
        except OSError:
            continue
    return found


def _remove(path: str, device: int) -> None:
    """Remove ``path`` and what is under it on ``device``; never anything on another file system."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if info.st_dev != device:
        return
    if _stat.S_ISDIR(info.st_mode):
        try:
            names = os.listdir(path)
        except OSError:
            names = []
        for name in names:
            _remove(os.path.join(path, name), device)
        try:
            os.rmdir(path)
        except OSError:
            pass
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def restore(roots: list[str], before: dict[str, int]) -> bool:
    """Remove what commands added to the private folders; False when what was there has changed (moved,
    replaced or removed: the sandbox cannot be put back as it was)."""
    seen: dict[str, int] = {}
    found = 0
    for root in roots:
        try:
            info = os.lstat(root)
        except OSError:
            continue
        seen[root] = info.st_ino
        found += 1 + _walk(root, info.st_dev, seen, before)
    return found == len(before) and seen == before


# Every resource limit this python knows, listed once (not per command: it is the same list each time).
LIMITS = tuple(getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_"))


def own_state() -> tuple[object, ...]:
    """What a command of the same user may change in this process without ptrace, and later commands
    would inherit: its resource limits (prlimit), CPU affinity, scheduling policy and priority."""
    limits = tuple(map(resource.getrlimit, LIMITS))
    return limits, sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def clear_ipc() -> None:
    """Remove the System V IPC objects commands made (the namespace outlives each command)."""
    for table in IPC_TABLES:
        try:  # (os calls, not open(): no buffered file object built three times per command)
            fd = os.open(table, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:  # a table is its heading line, then one line per object; a read returns whole lines
            rows = os.read(fd, 4096).count(b"\n")
        except OSError:
            rows = 0
        finally:
            os.close(fd)
        if rows > 1:
            _ipcrm()
            return


def _ipcrm() -> None:
    # Spawned rather than run through subprocess (not imported: see above), and looked for in the system's
    # read-only folders only, never a folder of $PATH a command could have put an ``ipcrm`` of its own in.
    # Its stdin, stdout and stderr are this process's /dev/null; no other descriptor is inheritable here.
    for folder in IPCRM_FOLDERS:
        path = os.path.join(folder, "ipcrm")
        if os.access(path, os.X_OK):
            break
    else:
        return
    try:
        child = os.posix_spawn(path, [path, "--all"], {})
    except OSError:
        return
    while True:
        try:
            os.waitpid(child, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


def end_all() -> None:
    """Kill and reap every other process of the namespace: as its init, all of them are ours to wait for."""
    while True:
        try:
            os.kill(-1, _signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def program(name: bytes, env: dict[bytes, bytes]) -> bytes:
    if b"/" in name:
        return name
    for folder in env.get(b"PATH", os.defpath.encode()).split(b":"):
        path = os.path.join(folder or b".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return name


def run(out: int, body: bytes) -> int:
    parts = body.split(b"\0")
    cwd, count = parts[0], int(parts[1])
    argv = parts[2 : 2 + count]
    env = dict(item.split(b"=", 1) for item in parts[2 + count :] if b"=" in item)
    try:
        os.chdir(cwd)
        child = os.posix_spawn(
            program(argv[0], env), argv, env,
            file_actions=[(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, out, 2)],
            setsid=True, setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT),
        )
    except OSError as exc:
        os.write(out, b"kimicode sandbox: cannot start %s: %s\n" % (argv[0], os.fsencode(exc.strerror or str(exc))))
        return 127
    finally:
        os.close(out)
        os.chdir("/")
    while True:
        try:
            pid, status = os.waitpid(-1, 0)  # orphans are reaped as they die, not left as zombies
        except InterruptedError:
            continue
        except ChildProcessError:
            return 127
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def receive(channel: _socket.socket) -> tuple[int, bytes] | None:
    """(output descriptor, body) of the next request; None when the host closed the channel."""
    while True:
        try:  # (MSG_CMSG_CLOEXEC: the descriptor reaches a command only as its stdout and stderr)
            head, ancillary, _, _ = channel.recvmsg(HEADER.size, _socket.CMSG_SPACE(4), _socket.MSG_CMSG_CLOEXEC)
            break
        except TimeoutError:  # (idle for WAIT_S: waiting on)
            continue
        except OSError:
            return None
    fds = [
        int.from_bytes(data[i : i + 4], sys.byteorder, signed=True)
        for level, kind, data in ancillary
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
        for i in range(0, len(data) - 3, 4)
    ]
    if len(head) < HEADER.size or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    (size,) = HEADER.unpack(head)
    body = bytearray()
    while len(body) < size:
        try:
            chunk = channel.recv(size - len(body))
        except TimeoutError:  # (the rest of a huge environment, WAIT_S late: waiting on)
            continue
        if not chunk:
            os.close(fds[0])
            return None
        body += chunk
    return fds[0], bytes(body)


def undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0) through _ctypes, as ctypes.CDLL would call it (without ctypes' imports)."""
    try:
        import _ctypes

        class Int(_ctypes._SimpleCData):
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = Int

        class Library:
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # (None: the program)

        prctl = Function(("prctl", Library()))  # type: ignore[arg-type]  # (what CDLL hands it)
    except (ImportError, AttributeError, TypeError, OSError):  # (a python whose _ctypes differs)
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[assignment]
    return bool(prctl(4, 0, 0, 0, 0) == 0)  # PR_SET_DUMPABLE 0


def main() -> None:
    if not undumpable():
        sys.exit(3)
    roots = sys.argv[1:]
    for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        _signal.signal(sig, _signal.SIG_DFL)  # no handler: as init, the signal never arrives from inside
    channel = _socket.socket(fileno=os.dup(0))  # (os.dup: not inheritable)
    channel.settimeout(WAIT_S)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    before = snapshot(roots)
    state = own_state()
    channel.sendall(READY)
    while True:
        request = receive(channel)
        if request is None:
            return
        code = run(*request)
        end_all()
        try:
            channel.sendall(STATUS.pack(code))
            intact = restore(roots, before) and own_state() == state
            clear_ipc()
            channel.sendall(VERDICT.pack(0 if intact else 1))
        except OSError:
            return
        if not intact:
            return


if __name__ == "__main__":
    main()
