"""Run the real kimicode CLI as a subprocess, isolated from the user's home and keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_env(home: Path, base_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIMI", "MOONSHOT"))}
    env["KIMICODE_HOME"] = str(home)
    env["HOME"] = str(home.parent / "userhome")
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["KIMI_API_KEY"] = "test-key"
    env["NO_COLOR"] = "1"
    if base_url:
        env["KIMI_BASE_URL"] = base_url
    env.update(extra)
    return env


def run_cli(
    args: list[str],
    *,
    home: Path,
    cwd: Path,
    base_url: str | None = None,
    stdin: str | None = "",
    timeout: float = 60,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = cli_env(home, base_url, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "kimicode", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_home_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")
