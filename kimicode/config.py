"""Settings for one run, layered: defaults < ~/.kimicode/config.toml < ./.kimicode/config.toml < env < flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_BASE_URL = "https://api.moonshot.ai/v1"
DEFAULT_MODEL = "kimi-k2.5"
MODES = ("instant", "thinking", "agent", "swarm")


class ConfigError(Exception):
    """A configuration problem the user must fix; the CLI prints it as one line and exits 2."""


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
    # (vLLM/SGLang chat_template_kwargs.thinking) or "none" (send nothing).
    thinking_style: str = "moonshot"
    max_retries: int = 4
    retry_base_delay: float = 1.0  # seconds; doubled per attempt, with jitter
    # Seconds one model request may take in all, retries and their waits included.
    request_timeout: float = 600.0
    # Seconds without a byte from the endpoint before an attempt counts as stalled (and is retried).
    stream_stall_timeout: float = 90.0
    debug: bool = False
    # Agent Swarm (mode "swarm"): sub-agents running at once, alive at once, tool calls across the
    # whole swarm, and steps per sub-agent.
    swarm_concurrency: int = 20
    swarm_max_agents: int = 100
    swarm_max_tool_calls: int = 1500
    swarm_max_steps: int = 30
    # "shared": sub-agents edit the workspace itself; "worktree": each edits its own git worktree of it
    # and a wave's end merges their changes back (falls back to "shared" outside a git repository).
    swarm_isolation: str = "shared"
    # Headless only: seconds to wait for MCP servers before the first request (0 = never wait; servers
    # that finish starting later still join the tool list on the next step).
    mcp_startup_wait: float = 0.0
    # Video input: "frames" samples frames locally and sends them as images (works with any vision
    # endpoint); "upload" sends the file to the endpoint's /files API and refers to it (Moonshot's route).
    video_input: str = "frames"
    video_max_frames: int = 32
    video_token_budget: int = 32_000

    @property
    def thinking(self) -> bool:
        return self.mode != "instant"


# Keys a config.toml may set, with the type each must have.
_FILE_KEYS: dict[str, type] = {
    "api_key": str,
    "base_url": str,
    "model": str,
    "mode": str,
    "yolo": bool,
    "max_steps": int,
    "thinking_style": str,
    "max_retries": int,
    "retry_base_delay": float,
    "video_input": str,
    "video_max_frames": int,
    "video_token_budget": int,
    "request_timeout": float,
    "stream_stall_timeout": float,
    "swarm_concurrency": int,
    "swarm_max_agents": int,
    "swarm_max_tool_calls": int,
    "swarm_max_steps": int,
    "swarm_isolation": str,
    "mcp_startup_wait": float,
}


def kimicode_home(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    value = env.get("KIMICODE_HOME")
    return Path(value).expanduser() if value else Path.home() / ".kimicode"


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from exc


def _apply_file(config: Config, data: dict[str, Any], path: Path) -> None:
    for key, value in data.items():
        expected = _FILE_KEYS.get(key)
        if expected is None:
            continue  # unknown keys belong to other features (mcp, skills ...) or newer versions
        if expected is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, expected):
            raise ConfigError(f"{path}: '{key}' must be a {expected.__name__}, got {value!r}")
        setattr(config, key, value)


def load_config(
    *,
    work_dir: Path | None = None,
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Config:
    """Build the Config for this run. ``flags`` holds only the options the user actually gave."""
    env = dict(os.environ) if env is None else env
    config = Config()
    config.home = kimicode_home(env)
    config.work_dir = (work_dir or Path.cwd()).resolve()
    _apply_file(config, read_toml(config.home / "config.toml"), config.home / "config.toml")
    project_file = config.work_dir / ".kimicode" / "config.toml"
    project = read_toml(project_file)
    project.pop("api_key", None)  # a key committed to a repository must never be picked up silently
    _apply_file(config, project, project_file)

    key = env.get("KIMI_API_KEY") or env.get("MOONSHOT_API_KEY")
    if key:
        config.api_key = key.strip()
    if env.get("KIMI_BASE_URL"):
        config.base_url = env["KIMI_BASE_URL"]
    if env.get("KIMI_MODEL"):
        config.model = env["KIMI_MODEL"]

    known = {f.name for f in fields(Config)}
    for name, value in (flags or {}).items():
        if value is not None and name in known:
            setattr(config, name, value)
    config.base_url = config.base_url.rstrip("/")
    if config.mode not in MODES:
        raise ConfigError(f"unknown mode '{config.mode}': use one of {', '.join(MODES)}")
    if config.video_input not in ("frames", "upload"):
        raise ConfigError(f"video_input must be 'frames' or 'upload', got '{config.video_input}'")
    if config.max_steps < 1:
        raise ConfigError("--max-steps must be at least 1")
    if config.swarm_isolation not in ("shared", "worktree"):
        raise ConfigError(f"swarm_isolation must be 'shared' or 'worktree', got '{config.swarm_isolation}'")
    for name in ("request_timeout", "stream_stall_timeout"):
        if not getattr(config, name) > 0:  # "not >" also catches NaN
            raise ConfigError(f"config key '{name}' must be a number of seconds above 0, got {getattr(config, name)}")
    if config.max_retries < 0:
        raise ConfigError(f"config key 'max_retries' must be 0 or more, got {config.max_retries}")
    for name in ("swarm_concurrency", "swarm_max_agents", "swarm_max_tool_calls", "swarm_max_steps"):
        if getattr(config, name) < 1:
            raise ConfigError(f"config key '{name}' must be at least 1, got {getattr(config, name)}")
    return config
