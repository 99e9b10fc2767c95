"""Command line: parse flags, build the Config, hand over to a front end.

Start-up cost matters (`--version`, `--help` must be instant): only typer and the config module load
here; everything heavy is imported inside the function that needs it.
"""

import contextlib
import functools
import io
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kimicode import __version__
from kimicode.config import MODES, SANDBOX_MODES, ConfigError, load_config

# Words that select a management subcommand instead of being read as a task.
SUBCOMMANDS = ("mcp", "skills", "sessions", "trust", "batch", "models", "verify-endpoint", "plugin", "rewind")

EXIT_USAGE = 2

run_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
manage_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
acp_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one clear line and return the exit to raise."""
    typer.echo(f"kimicode: {message}", err=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kimicode {__version__}")
        raise typer.Exit()


@run_app.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Management: kimicode mcp list|add|remove|import|test|login|logout · kimicode skills list · "
        "kimicode sessions · kimicode rewind SESSION_ID N · "
        "kimicode trust [--revoke] · kimicode batch TASKS.jsonl · kimicode models [--local] · "
        "kimicode verify-endpoint · kimicode plugin install|list|enable|disable|remove · Editors: kimicode acp · "
        "Server: kimicode serve|web"
    ),
)
def run(
    task: Annotated[Optional[str], typer.Argument(help="What to do. Omit for an interactive session.")] = None,
    print_mode: Annotated[bool, typer.Option("-p", "--print", help="Run headless: do the task, print the result, exit.")] = False,
    output_format: Annotated[str, typer.Option("--output-format", metavar="FORMAT", help="Headless output: text, json or stream-json.")] = "text",
    input_format: Annotated[str, typer.Option("--input-format", metavar="FORMAT", help="Headless input: text, or stream-json (one JSON user message a line; later lines steer the running turn).")] = "text",
    plan: Annotated[bool, typer.Option("--plan", help="Plan only: read, change nothing, end with a plan (headless: the plan is the result).")] = False,
    yolo: Annotated[bool, typer.Option("-y", "--yolo", help="Approve every action without asking.")] = False,
    model: Annotated[Optional[str], typer.Option("-m", "--model", metavar="NAME", help="Model name (default kimi-k2.5).")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", metavar="URL", help="OpenAI-compatible endpoint URL.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Use an OpenAI-compatible server on this machine (Ollama, LM Studio, llama.cpp, vLLM, SGLang); no key needed.")] = False,
    mode: Annotated[Optional[str], typer.Option("--mode", metavar="MODE", help="instant, thinking, agent or swarm.")] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", metavar="NAME", help="Run as a custom agent (.claude/agents/NAME.md ...): its instructions, tools and model.")] = None,
    image: Annotated[Optional[list[Path]], typer.Option("--image", metavar="PATH", help="Attach an image to the first message (repeatable).")] = None,
    video: Annotated[Optional[Path], typer.Option("--video", metavar="PATH", help="Attach a video to the first message.")] = None,
    continue_session: Annotated[bool, typer.Option("-C", "--continue", help="Continue this workspace's last session.")] = False,
    resume: Annotated[Optional[str], typer.Option("-r", "--resume", metavar="ID", help="Resume a session by ID; without an ID, pick from a list.")] = None,
    work_dir: Annotated[Optional[Path], typer.Option("-w", "--work-dir", metavar="DIR", help="Workspace directory (default: current).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", metavar="N", help="Step limit for the main agent.")] = None,
    trust: Annotated[bool, typer.Option("--trust", help="Trust this folder for this run: its own settings (.kimicode/config.toml, .mcp.json) apply.")] = False,
    sandbox: Annotated[Optional[str], typer.Option("--sandbox", metavar="MODE", help="Sandbox for commands: read-only, workspace-write or off.")] = None,
    add_dir: Annotated[Optional[list[Path]], typer.Option("--add-dir", metavar="DIR", help="A folder outside the workspace that -y may write too (repeatable).")] = None,
    allow_escalation: Annotated[bool, typer.Option("--allow-escalation", help="Let commands that ask to leave the sandbox run without asking (-y does not).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """kimicode: a terminal coding agent for Kimi K2.5."""
    interactive = not print_mode and sys.stdin.isatty() and sys.stdout.isatty()

    def refuse(message: str, kind: str = "usage") -> typer.Exit:
        """One line; a headless json run also gets its one result object (DESIGN.md B.10)."""
        if not interactive and output_format in ("json", "stream-json"):
            from kimicode.frontends.headless.printer import early_exit

            return typer.Exit(early_exit(output_format, kind, message, EXIT_USAGE))
        return fail(message)

    if output_format not in ("text", "json", "stream-json"):
        raise fail(f"unknown --output-format '{output_format}': use text, json or stream-json")
    if input_format not in ("text", "stream-json"):
        raise refuse(f"unknown --input-format '{input_format}': use text or stream-json")
    if mode is not None and mode not in MODES:
        raise refuse(f"unknown --mode '{mode}': use one of {', '.join(MODES)}")
    if sandbox is not None and sandbox not in SANDBOX_MODES:
        raise refuse(f"unknown --sandbox '{sandbox}': use one of {', '.join(SANDBOX_MODES)}")
    if work_dir is not None and not work_dir.is_dir():
        raise refuse(f"--work-dir {work_dir} is not a directory")
    for folder in add_dir or []:
        if not folder.expanduser().is_dir():
            raise refuse(f"--add-dir {folder} is not a directory")
    flags: dict[str, Any] = {
        "yolo": yolo or None,
        "model": model,
        "base_url": base_url,
        "mode": mode,
        "max_steps": max_steps,
        "debug": debug or None,
        "trust": trust or None,
        "sandbox": sandbox,
        "stance": "plan" if plan else None,
        "add_dirs": [folder.expanduser().resolve() for folder in add_dir] if add_dir else None,
        "escalation": "auto" if allow_escalation else None,
        "agent": agent,
    }
    if local and base_url:
        raise fail("--local and --base-url both name the endpoint: give one")
    try:
        config = load_config(work_dir=work_dir, flags=flags)
        for line in config.warnings:  # a typo in a config file changes nothing, so say so
            typer.echo(f"kimicode: {line}", err=True)
        if local:
            from kimicode.llm.local import use_local

            server = use_local(config, model)
            # The user's own choice for this run: a config rebuilt from the flags (the REPL's trust
            # question) keeps it, key left out included.
            flags.update(base_url=config.base_url, model=config.model, api_key="")
            typer.echo(f"kimicode: using {server.name} at {config.base_url}, model {config.model}", err=True)
    except ConfigError as exc:
        raise refuse(str(exc), "config") from exc
    if agent is not None:
        from kimicode.agent.agent_catalog import chosen_agent

        problem = chosen_agent(config, flags)
        if problem:
            raise refuse(problem)

    options = {
        "images": list(image or []),
        "video": video,
        "continue_session": continue_session,
        "resume": resume,
        "input_format": input_format,
        "flags": flags,  # to rebuild the config when the REPL's trust question is answered
    }
    if interactive:
        from kimicode.frontends.common.heap import loaded
        from kimicode.frontends.launch import launch_repl

        loaded()
        code = launch_repl(config, task, options)
    else:
        from kimicode.frontends.launch import launch_headless

        code = launch_headless(config, task, output_format, options)
    raise typer.Exit(code)


@acp_app.command(context_settings={"help_option_names": ["-h", "--help"]})
def acp(
    yolo: Annotated[bool, typer.Option("-y", "--yolo", help="Approve every action without asking.")] = False,
    model: Annotated[Optional[str], typer.Option("-m", "--model", metavar="NAME", help="Model name (default kimi-k2.5).")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", metavar="URL", help="OpenAI-compatible endpoint URL.")] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", metavar="MODE", help="Mode of new sessions: instant, thinking, agent or swarm.")] = None,
    sandbox: Annotated[Optional[str], typer.Option("--sandbox", metavar="MODE", help="Sandbox for commands: read-only, workspace-write or off.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Log debug detail to KIMICODE_HOME/logs/acp.log.")] = False,
) -> None:
    """Run as an Agent Client Protocol agent on stdio, for editors (Zed, JetBrains IDEs, ...)."""
    if mode is not None and mode not in MODES:
        raise fail(f"unknown --mode '{mode}': use one of {', '.join(MODES)}")
    if sandbox is not None and sandbox not in SANDBOX_MODES:
        raise fail(f"unknown --sandbox '{sandbox}': use one of {', '.join(SANDBOX_MODES)}")
    flags: dict[str, Any] = {
        "yolo": yolo or None,
        "model": model,
        "base_url": base_url,
        "mode": mode,
        "sandbox": sandbox,
        "debug": debug or None,
    }
    from kimicode.frontends.launch import launch_acp

    raise typer.Exit(launch_acp(flags))


def _optional_resume_id(argv: list[str]) -> list[str]:
    """`-r`/`--resume` takes an optional ID: alone (or before another flag) it means "pick from a list"."""
    fixed: list[str] = []
    for i, word in enumerate(argv):
        fixed.append(word)
        if word in ("-r", "--resume"):
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or following.startswith("-"):
                fixed.append("")
    return fixed


@functools.cache
def run_command() -> Any:
    """The run command as click sees it (a few ms to build): a batch's warm process builds it before it forks."""
    from kimicode.cli_help import plain_help

    return plain_help(typer.main.get_command(run_app))


def main() -> None:
    from kimicode.frontends.common import heap

    heap.pause_collection()  # until the run's modules are loaded (frontends/common/heap.py says why)
    try:
        _main()
    finally:
        heap.before_exit()


def entry() -> None:
    """The process's own entry point (the ``kimicode`` command, ``python -m kimicode``): ``main``, after which
    a headless run that is over ends the process at once (frontends/common/quick_exit.py). Code that runs
    ``main`` inside a process of its own making (the batch zygote's tasks) calls ``main``, which returns."""
    try:
        main()
    except SystemExit as done:
        from kimicode.frontends.common.quick_exit import end

        end(done.code)
        raise


def _main() -> None:
    from kimicode.frontends.common.heap import loaded
    from kimicode.security.redact import RedactingStream, register_environment

    # stderr is one channel with one filter: progress, warnings, errors and tracebacks all pass it.
    register_environment()
    sys.stderr = RedactingStream(sys.stderr)
    from kimicode.security.childenv import withhold_keys

    withhold_keys()  # after registering them for redaction: nothing kimicode starts inherits them
    from kimicode.security.dumpable import forbid_inspection

    # After withhold_keys, which blanks the start-up environment through /proc/self/mem: a process that is
    # not dumpable may no longer open its own /proc files as a non-root user.
    forbid_inspection()
    argv = _optional_resume_id(sys.argv[1:])
    from kimicode.cli_help import plain_help

    if argv and argv[0] in ("serve", "web"):  # the HTTP server and web UI (frontends/web)
        from kimicode.frontends.web.command import main as serve_main

        loaded()
        serve_main(argv)
    elif argv and argv[0] == "acp":  # a front end of its own, not a management verb
        loaded()
        plain_help(typer.main.get_command(acp_app)).main(args=argv[1:], prog_name="kimicode acp")
    elif argv and argv[0] in SUBCOMMANDS:
        from kimicode.manage import register

        register(manage_app)
        loaded()
        plain_help(typer.main.get_command(manage_app)).main(args=argv, prog_name="kimicode")
    else:
        command = run_command()
        try:
            code = command.main(args=argv, prog_name="kimicode", standalone_mode=False)
        except Exception as exc:  # a usage error found while parsing (unknown option, bad value)
            show = getattr(exc, "show", None)
            if show is None:
                raise
            show()
            format_message = getattr(exc, "format_message", None)
            sys.exit(_usage_error_exit(argv, str(format_message() if format_message is not None else exc)))
        sys.exit(code if isinstance(code, int) else 0)


def _usage_error_exit(argv: list[str], message: str) -> int:
    """A parse error still gets its result object when the words asked for json output."""
    for i, word in enumerate(argv):
        value = word.split("=", 1)[1] if word.startswith("--output-format=") else None
        if word == "--output-format" and i + 1 < len(argv):
            value = argv[i + 1]
        if value in ("json", "stream-json"):
            from kimicode.frontends.headless.printer import early_exit

            with contextlib.redirect_stderr(io.StringIO()):  # click has said it on stderr already
                return early_exit(value, "usage", message, EXIT_USAGE)
    return EXIT_USAGE
