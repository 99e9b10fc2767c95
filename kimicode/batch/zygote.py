"""The warm process of the local pool: imports the agent's run path once, then forks one child per task.

Run as ``python -P -m kimicode.batch.zygote FD LABEL`` by kimicode/batch/warm.py, FD being its end of
a SOCK_SEQPACKET socket pair (LABEL only names the batch in ``ps``). Each request on it is one message: JSON ``{"argv", "cwd", "env"}`` (argv
without the interpreter, as ``kimicode`` would get it) with four descriptors attached: the task's channel
and the agent's stdin, stdout and stderr.

Invariants:
- This process stays single-threaded and never runs an event loop, so a fork copies no lock held by
  another thread and no loop: each child builds its own through ``asyncio.run`` in ``kimicode.cli.main``.
- A child is what ``python -m kimicode ARGS`` started in ``cwd`` with ``env`` would be, minus the import
  time: its own session (its group is what a timeout kills), the task's environment replaces this one
  (both os.environ and the C environment its programs inherit), stdio are the task's, ``main()`` runs
  from the top (redaction, withheld keys, non-dumpable) in a copy of the state as it was after import.
- The child says its pid on its channel once its session exists (so a kill of the group finds it);
  this process says ``{"exit": code}`` there when it has reaped it, code as asyncio reports it (-N for
  signal N). That is the driver's only way to learn the end of a process it did not start.
- What this process prepares before it forks (modules, the run command, the TLS context, a working
  sandbox probe) is the same for every task: nothing read from a task's repository or environment, no key,
  no thread. Anything that depends on a task stays the child's to do.
- This process never sees the API keys: they travel in a task's env and live only in its child. It dies
  with the driver (PDEATHSIG, and an end of file on FD), and its children die with it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

# What the headless run path imports (found by diffing sys.modules after a `kimicode -p` run); a module
# missing here is imported, and on a checkout without .pyc files compiled, by each child instead: about
# 40 ms of CPU per task. tests/test_batch_warm_modules.py fails when the run path imports one not listed.
# One that fails to import here is left to the child.
WARM_MODULES = (
    "openai",
    "httpx",
    "httpcore",
    "httpcore2",
    "h11",
    "anyio",
    "anyio.abc",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "anyio._backends._asyncio",
    "importlib.resources.readers",
    "importlib.readers",
    "typer._adapters",
    "typer._click.decorators",
    "truststore",
    "ctypes",
    "queue",
    "concurrent.futures.thread",
    "stringprep",
    "encodings.idna",
    "configparser",
    "getpass",
    "glob",
    "mmap",
    "shlex",
    "termios",
    # GitPython, for the change set on submit: its import runs `git version` (the same git for every task:
    # the warm process has the tasks' PATH), and it is imported by each child otherwise.
    "git",
    "kimicode.cli",
    "kimicode.cli_help",
    "kimicode.frontends.launch",
    "kimicode.frontends.headless.run",
    "kimicode.frontends.common.assembly",
    "kimicode.llm.early_models",
    "kimicode.frontends.common.heap",
    "kimicode.frontends.common.sessions",
    "kimicode.frontends.common.signals",
    "kimicode.discovery.mcp_configs",
    "kimicode.agent.loop",
    "kimicode.agent.runtime",
    "kimicode.agent.mcp_run",
    "kimicode.agent.prompts",
    "kimicode.extensions.commands",
    "kimicode.extensions.hooks",
    "kimicode.extensions.hooks_config",
    "kimicode.extensions.hooks_outcome",
    "kimicode.extensions.hooks_run",
    "kimicode.extensions.memory",
    "kimicode.extensions.plugin_index",
    "kimicode.extensions.plugins",
    "kimicode.extensions.summary",
    "kimicode.llm.client",
    "kimicode.llm.wire",
    "kimicode.llm.wire_link",
    "kimicode.llm.models",
    "kimicode.mcp.manager",
    "kimicode.mcp.mentions",
    "kimicode.mcp.prompt_use",
    "kimicode.mcp.prompts",
    "kimicode.mcp.resources",
    "kimicode.session.store",
    "kimicode.session.replay",
    "kimicode.session.listing",
    "kimicode.security.redact",
    "kimicode.security.childenv",
    "kimicode.security.dumpable",
    "kimicode.security.sandbox",
    "kimicode.security.trust",
    "kimicode.security.portbridge",
    "kimicode.tools.registry",
    *(
        f"kimicode.tools.{name}"
        for name in (
            "background bash createfile fetch fileio filewrite insert propose_plan screenshot strreplace submit "
            "task_output task_stop view web_search"
        ).split()
    ),
    "kimicode.vcs.git",
    "kimicode.vision.browser",
)
MAX_REQUEST = 4 * 1024 * 1024  # one task's argv, cwd and environment
FDS_PER_REQUEST = 4


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _warm() -> None:
    # As a fresh `kimicode` does while its modules load (frontends/common/heap.py): no collection passes
    # over a heap that only grows. Then everything imported is frozen out of the collector's view, so a
    # child's collections neither walk it nor write to its pages (each write would copy a page per child).
    gc.disable()
    from kimicode.llm.sdk_import import defer_sdk_types

    defer_sdk_types()  # as a fresh run imports the SDK: without the type packages a chat client never reads
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # What every task's agent would otherwise make again: the CLI's command and the TLS context (the
    # certificate store). Neither holds a key or a thread; a failure is left to the child.
    with contextlib.suppress(Exception):
        from kimicode.llm.tls import shared_tls_context

        _warm_command()
        shared_tls_context()
        _probe_sandbox()
    gc.freeze()
    gc.enable()


def _probe_sandbox() -> None:
    """Ask bubblewrap once, here, whether the default sandbox (no network) works on this machine, instead of
    once per task. The answer depends only on the machine, the bubblewrap found on PATH (the tasks' PATH)
    and fixed arguments: nothing of a task goes into it. When no setting works nothing is kept: each task
    asks again and says why itself."""
    from kimicode.security import sandbox

    if not sandbox.detect_sandbox("workspace-write", False, Path.cwd(), Path.cwd()).active:
        sandbox._probe.cache_clear()


def _warm_command() -> None:
    """Build the run command once, with each option's value converter (a pydantic adapter per option,
    built on first use: about a sixth of a child's own CPU); every child parses with it (``run_command``
    keeps what it built). Each child parses with its own copy (a fork), so nothing one task's parse leaves
    behind reaches another."""
    from kimicode.cli import run_command

    for param in run_command().params:
        resolve = getattr(param, "get_runtime_param", None)  # typer's converter, cached on the option
        if callable(resolve):
            resolve()


def _exit_code(code: Any) -> int:
    """The process exit status ``sys.exit(code)`` gives, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_main() -> int:
    from kimicode.cli import main

    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # noqa: BLE001 - the interpreter's own last resort: print it, exit 1
        traceback.print_exc()
        code = 1
    # What interpreter shutdown does before the process ends (os._exit skips it).
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def _become_task(request: dict[str, Any], chan: socket.socket, stdio: list[int], zygote: int) -> int:
    """In the forked child: turn into the task's agent process and run it; returns its exit status."""
    os.setsid()
    _die_with_parent()
    if os.getppid() != zygote:  # this process died between fork and prctl
        return 128 + signal.SIGKILL
    chan.send(json.dumps({"pid": os.getpid()}).encode())
    chan.close()
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["kimicode", *request["argv"]]
    return _run_main()


class Zygote:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: dict[int, socket.socket] = {}
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()

    def serve(self) -> int:
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.selector.register(self.control, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.control:
                    if not self._accept():
                        return 0
                else:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                    self._reap()

    def _accept(self) -> bool:
        """Fork the child for one request; False when the driver has gone."""
        try:
            data, ancdata, _, _ = self.control.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(FDS_PER_REQUEST * 4))
        except ConnectionError:
            return False
        fds: list[int] = []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(memoryview(payload).cast("i"))
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        if len(fds) != FDS_PER_REQUEST:
            for fd in fds:
                os.close(fd)
            return True
        chan = socket.socket(fileno=fds[0])
        stdio = fds[1:]
        try:
            request = json.loads(data)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            zygote = os.getpid()
            pid = os.fork()
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                chan.send(json.dumps({"error": str(exc)}).encode())
            chan.close()
            for fd in stdio:
                os.close(fd)
            return True
        if pid == 0:
            code = 1
            try:
                self._leave(chan)
                code = _become_task(request, chan, stdio, zygote)
            finally:
                os._exit(code)
        for fd in stdio:
            os.close(fd)
        self.children[pid] = chan
        return True

    def _leave(self, mine: socket.socket) -> None:
        """In a fresh child: drop what belongs to this process and to the other tasks."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        self.control.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for chan in self.children.values():
            if chan is not mine:
                chan.close()
        self.children.clear()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            chan = self.children.pop(pid, None)
            if chan is not None:
                with contextlib.suppress(OSError):
                    chan.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                chan.close()


def main(argv: list[str]) -> int:
    _die_with_parent()
    control = socket.socket(fileno=int(argv[0]))
    if os.getppid() == 1:  # the driver is already gone
        return 0
    _warm()
    control.send(json.dumps({"ready": os.getpid(), "modules": len(sys.modules)}).encode())
    return Zygote(control).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
