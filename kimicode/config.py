"""Settings for one run, layered: defaults < ~/.kimicode/config.toml < ./.kimicode/config.toml < env < flags.

The project's file is someone else's until the user trusts the folder: from it only settings that narrow
what a run may do apply (deny/ask rules, a stricter sandbox, lower limits, ``yolo = false``) plus harmless
ones (model, mode, thinking_style ...). Settings that widen (``yolo = true``, another endpoint or key, allow
rules, a looser sandbox, the network, higher limits, anything not known to be harmless) wait for trust:
``--trust`` for one run, or the stored decision (kimicode.security.trust) while the files are unchanged.
Environment variables and flags are the user's own and always apply.

Reading one file is kimicode.config_file; what the project may set untrusted is kimicode.config_project.

Invariants:
- ``load_config`` returns a Config whose every value passed ``_check`` or raises ConfigError (one line for
  the user; the CLI exits 2). It never raises anything else for bad input.
- The user's API key is registered for redaction before anything else can print it.
- The project's files are read once: trust, settings and MCP servers are all decided on the same bytes.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.config_file import (
    ESCALATION_MODES,
    SANDBOX_MODES,
    ConfigError,
    Rule,
    parse_file,
    read_toml,
    unknown_key_lines,
    valid_rule,
)
from kimicode.config_project import split_project
from kimicode.security.childenv import environment
from kimicode.security.redact import register as register_secret

if TYPE_CHECKING:
    from kimicode.security.trust import ProjectFiles

DEFAULT_BASE_URL = "https://api.moonshot.ai/v1"
DEFAULT_MODEL = "kimi-k2.5"
MODES = ("instant", "thinking", "agent", "swarm")
THINKING_STYLES = ("auto", "moonshot", "chat_template", "none")
# Where a rule came from, as /permissions shows it.
SOURCE_USER, SOURCE_PROJECT, SOURCE_SAVED = "user config", "project config", "saved for this project"


# What to say when no key is configured: every place that needs a key says the same.
NO_KEY = (
    "no API key: set KIMI_API_KEY (or MOONSHOT_API_KEY), or put api_key = \"...\" in {home}/config.toml "
    "(get a key at https://platform.moonshot.ai)"
)


@dataclass
class Config:
    api_key: str = ""
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    mode: str = "agent"
    work_dir: Path = field(default_factory=Path.cwd)
    home: Path = field(default_factory=lambda: Path.home() / ".kimicode")
    yolo: bool = False
    max_steps: int = 100
    # How the endpoint switches thinking: "moonshot" (extra_body.thinking), "chat_template"
    # (vLLM/SGLang chat_template_kwargs.thinking), "none" (send nothing), or "auto": moonshot for Moonshot's
    # API, chat_template for a vLLM/SGLang server, none elsewhere (see llm/endpoint.py).
    thinking_style: str = "auto"
    # Overrides of the model profile (0 = the profile's or what the endpoint reports).
    context_window: int = 0
    max_output_tokens: int = 0
    max_retries: int = 4
    retry_base_delay: float = 1.0  # seconds; doubled per attempt, with jitter
    # Seconds one model request may take in all, retries and their waits included.
    request_timeout: float = 600.0
    # Seconds without a byte from the endpoint before an attempt counts as stalled (and is retried).
    stream_stall_timeout: float = 90.0
    debug: bool = False
    # Agent Swarm (mode "swarm"): where the shared request limit starts (and the slots sub-agents' tool runs
    # share), sub-agents alive at once, tool calls across the whole swarm, and steps per sub-agent.
    swarm_concurrency: int = 20
    swarm_max_agents: int = 100
    swarm_max_tool_calls: int = 1500
    swarm_max_steps: int = 30
    # "shared": sub-agents edit the workspace itself; "worktree": each edits its own git worktree of it
    # and a wave's end merges their changes back (falls back to "shared" outside a git repository).
    swarm_isolation: str = "shared"
    # Headless only: seconds to wait for MCP servers before the first request (0 = never wait; servers
    # that finish starting later still join the tool list on the next step).
    # Headless and ACP runs wait this long (s) for MCP servers before the first request; the REPL never waits.
    mcp_startup_wait: float = 10.0
    # Video input: "frames" samples frames locally and sends them as images (works with any vision
    # endpoint); "upload" sends the file to the endpoint's /files API and refers to it (Moonshot's route).
    video_input: str = "frames"
    video_max_frames: int = 32
    video_token_budget: int = 32_000
    # Effective for this run: --trust, or a stored "trusted" whose fingerprint matches the project files.
    trusted: bool = False
    # The approval stance the run starts in: "ask", "auto-edit" or "plan" (--plan); the REPL cycles it
    # with Shift-Tab. Not a config.toml key: a run plans because the user asked for it.
    stance: str = "ask"
    # A custom agent the main agent runs as (--agent NAME): its instructions, tool allowlist and model.
    # Not a config.toml key: a run is an agent's because the user asked for it.
    agent: str = ""
    sandbox: str = "workspace-write"  # "read-only" | "workspace-write" | "off"
    sandbox_network: bool = False
    # Host unix sockets sandboxed commands may reach although /tmp and /run are private inside (an ssh-agent).
    sandbox_sockets: list[str] = field(default_factory=list)
    # Folders outside the workspace that -y covers too (--add-dir, repeatable); guarded places inside them
    # still need a rule (kimicode/security/scope.py).
    add_dirs: list[Path] = field(default_factory=list)
    # Commands asking to leave the sandbox: "ask" (every time; refused headless) or "auto" (--allow-escalation).
    escalation: str = "ask"
    # Environment variables the model's commands may inherit although kimicode withholds them
    # (KIMI_API_KEY, MOONSHOT_API_KEY, OPENAI_API_KEY; see security/childenv.py).
    pass_env: list[str] = field(default_factory=list)
    # (kind, rule text, source): kind "allow" | "ask" | "deny"; source one of the SOURCE_* labels.
    permission_rules: list[tuple[str, str, str]] = field(default_factory=list)
    # The project's widening settings left out because the folder is not trusted, one human line each.
    ignored_project_settings: list[str] = field(default_factory=list)
    # The project files trust was decided on, as read then (security/trust.py): what loads them later
    # (the project's MCP servers) parses these bytes, not the files again.
    project_files: ProjectFiles | None = field(default=None, repr=False, compare=False)
    # REPL: a turn that ran this long (s) sends a terminal notification when it ends or asks; 0 = never.
    notify_after: float = 20.0
    # REPL: how file paths become links ("auto" picks by terminal; "none", "file", "vscode", ... or a
    # pattern with {path} {line} {column} {host}; see kimicode/frontends/repl/links.py).
    hyperlink_format: str = "auto"
    # USD per million tokens (input, cached input, output) by model name, from [prices."MODEL"]: costs are
    # shown only for these and for Kimi models on Moonshot's own API (kimicode/llm/prices.py).
    prices: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    # Lines to show once at start: keys in a config file that nothing reads.
    warnings: list[str] = field(default_factory=list)

    @property
    def thinking(self) -> bool:
        return self.mode != "instant"


def _field_names() -> set[str]:
    return {f.name for f in fields(Config)}


def kimicode_home(env: Mapping[str, str] | None = None) -> Path:
    source: Mapping[str, str] = os.environ if env is None else env
    value = source.get("KIMICODE_HOME")
    return Path(value).expanduser() if value else Path.home() / ".kimicode"


def _user_layer(home: Path, work_dir: Path) -> tuple[Config, list[tuple[str, str, str]]]:
    """Defaults plus the user's config.toml, and the user's rules."""
    config = Config()
    config.home = home
    config.work_dir = work_dir
    path = home / "config.toml"
    data = read_toml(path)
    values, rules = parse_file(data, path)
    for key, value in values.items():
        setattr(config, key, value)
    config.warnings = unknown_key_lines(data, path, _field_names())
    return config, [(kind, text, SOURCE_USER) for kind, text in rules]


def _project_layer(
    work_dir: Path, files: ProjectFiles | None = None, warnings: list[str] | None = None
) -> tuple[dict[str, Any], list[Rule]]:
    """The project's config.toml; ``files``: the project files as read for the trust check, whose bytes are
    parsed rather than the file read again (what was fingerprinted is what applies). Keys nothing reads
    are named in ``warnings``."""
    path = work_dir / ".kimicode" / "config.toml"
    key = work_dir.resolve() / ".kimicode" / "config.toml"  # as ProjectFiles names it
    if files is None or key not in files.data:
        data = read_toml(path)
    else:
        raw = files.data[key]
        try:
            data = tomllib.loads(raw.decode("utf-8")) if raw is not None else {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from exc
    if warnings is not None:
        warnings += unknown_key_lines(data, path, _field_names())
    return parse_file(data, path)


def user_endpoint(home: Path, env: dict[str, str] | None = None, flag: str | None = None) -> str:
    """The endpoint the user chose (flag, KIMI_BASE_URL, their config.toml, else the default), never the
    project's: where a key the user types may be sent."""
    env = environment() if env is None else env
    user_value = read_toml(home / "config.toml").get("base_url")
    chosen = flag or env.get("KIMI_BASE_URL") or (user_value if isinstance(user_value, str) else "") or DEFAULT_BASE_URL
    return chosen.rstrip("/")


def project_widening(work_dir: Path, home: Path | None = None, files: ProjectFiles | None = None) -> list[str]:
    """The lines of the project's config.toml that would widen the user's settings (see split_project)."""
    work_dir = work_dir.resolve()
    base, _ = _user_layer(home or kimicode_home(), work_dir)
    values, rules = _project_layer(work_dir, files)
    return split_project(base, values, rules)[2]


def widening_settings(work_dir: Path, home: Path | None = None, files: ProjectFiles | None = None) -> list[str]:
    """What trusting the folder would turn on, one human line each ("yolo = true", "allow bash(rm *)" ...).

    Compared with the user's own settings in ``home`` (default: KIMICODE_HOME), so a project value that only
    repeats or tightens them is not listed. ``files``: the project files as read once, so what is shown is
    what the stored fingerprint covers.
    """
    from kimicode.security.trust import project_mcp_lines

    return project_widening(work_dir, home, files) + project_mcp_lines(work_dir, files)


def load_config(
    *,
    work_dir: Path | None = None,
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Config:
    """Build the Config for this run. ``flags`` holds only the options the user actually gave;
    ``flags["trust"]`` trusts the workspace for this run."""
    from kimicode.security.trust import ProjectFiles, TrustStore, project_mcp_lines

    env = environment() if env is None else env
    flags = flags or {}
    home = kimicode_home(env)
    config, rules = _user_layer(home, (work_dir or Path.cwd()).resolve())
    register_secret(config.api_key)  # the user's own key: hidden in every output even when env overrides it
    # Read once: the trust fingerprint, the project's settings and its MCP servers all come from these bytes.
    files = config.project_files = ProjectFiles(config.work_dir)
    values, project_rules = _project_layer(config.work_dir, files, config.warnings)
    store = TrustStore(home)
    config.trusted = bool(flags.get("trust")) or store.is_trusted(config.work_dir, files)
    if config.trusted:
        applied, applied_rules = values, project_rules
    else:
        applied, applied_rules, config.ignored_project_settings = split_project(config, values, project_rules)
        config.ignored_project_settings += project_mcp_lines(config.work_dir, files)
    for key, value in applied.items():
        setattr(config, key, value)
    rules += [(kind, text, SOURCE_PROJECT) for kind, text in applied_rules]
    # Rules the user kept from an approval question are the user's own: they apply trusted or not.
    rules += [("allow", text, SOURCE_SAVED) for text in store.rules(config.work_dir) if valid_rule(text)]
    config.permission_rules = rules

    api_key = env.get("KIMI_API_KEY") or env.get("MOONSHOT_API_KEY")
    if api_key:
        config.api_key = api_key.strip()
    if env.get("KIMI_BASE_URL"):
        config.base_url = env["KIMI_BASE_URL"]
    if env.get("KIMI_MODEL"):
        config.model = env["KIMI_MODEL"]

    known = {f.name for f in fields(Config)} - {"trusted", "permission_rules", "ignored_project_settings", "project_files", "warnings"}
    for name, value in flags.items():
        if value is not None and name in known:
            if name == "add_dirs":  # the flag adds to the configured folders
                value = [*config.add_dirs, *(p for p in value if p not in config.add_dirs)]
            setattr(config, name, value)
    register_secret(config.api_key)
    config.base_url = config.base_url.rstrip("/")
    _check(config)
    return config


def _check(config: Config) -> None:
    """Every value of the finished Config is one the run can use; else the one-line ConfigError."""
    if config.mode not in MODES:
        raise ConfigError(f"unknown mode '{config.mode}': use one of {', '.join(MODES)}")
    if config.sandbox not in SANDBOX_MODES:
        raise ConfigError(f"sandbox must be one of {', '.join(SANDBOX_MODES)}, got '{config.sandbox}'")
    if config.escalation not in ESCALATION_MODES:
        raise ConfigError(f"escalation must be one of {', '.join(ESCALATION_MODES)}, got '{config.escalation}'")
    if config.video_input not in ("frames", "upload"):
        raise ConfigError(f"video_input must be 'frames' or 'upload', got '{config.video_input}'")
    if config.max_steps < 1:
        raise ConfigError("--max-steps must be at least 1")
    if config.swarm_isolation not in ("shared", "worktree"):
        raise ConfigError(f"swarm_isolation must be 'shared' or 'worktree', got '{config.swarm_isolation}'")
    for name in ("request_timeout", "stream_stall_timeout"):
        if not getattr(config, name) > 0:  # "not >" also catches NaN
            raise ConfigError(f"config key '{name}' must be a number of seconds above 0, got {getattr(config, name)}")
    if not config.notify_after >= 0:
        raise ConfigError(f"config key 'notify_after' must be 0 (off) or more seconds, got {config.notify_after}")
    if config.thinking_style not in THINKING_STYLES:
        raise ConfigError(f"thinking_style must be one of {', '.join(THINKING_STYLES)}, got '{config.thinking_style}'")
    for name in ("context_window", "max_output_tokens"):
        if getattr(config, name) < 0:
            raise ConfigError(f"config key '{name}' must be 0 (automatic) or more, got {getattr(config, name)}")
    if config.max_retries < 0:
        raise ConfigError(f"config key 'max_retries' must be 0 or more, got {config.max_retries}")
    for name in ("swarm_concurrency", "swarm_max_agents", "swarm_max_tool_calls", "swarm_max_steps"):
        if getattr(config, name) < 1:
            raise ConfigError(f"config key '{name}' must be at least 1, got {getattr(config, name)}")
