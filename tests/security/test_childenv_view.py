"""The environment a command is started with follows os.environ and the withheld keys at every call,
though the decoded view is reused while neither changed."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kimicode.security import childenv
from kimicode.security.childenv import WITHHELD, command_env
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool


def expected(pass_env: tuple[str, ...] = ()) -> dict[str, str]:
    whole = {**os.environ, **childenv._taken}
    return {k: v for k, v in whole.items() if k not in WITHHELD or k in pass_env}


def test_every_change_of_os_environ_is_seen_by_the_next_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(childenv, "_taken", {})
    first = command_env()
    assert first == expected()
    first["INJECTED_BY_A_CALLER"] = "x"  # a caller adds to its copy (bash adds PAGER ...): never seen again
    assert "INJECTED_BY_A_CALLER" not in command_env()
    childenv.environment()["INJECTED_BY_A_CALLER"] = "y"
    assert "INJECTED_BY_A_CALLER" not in command_env() and "INJECTED_BY_A_CALLER" not in childenv.environment()
    monkeypatch.setenv("KIMICODE_VIEW_TEST", "one")
    assert command_env()["KIMICODE_VIEW_TEST"] == "one"
    monkeypatch.setenv("KIMICODE_VIEW_TEST", "two")  # same key, same length, other value
    assert command_env()["KIMICODE_VIEW_TEST"] == "two"
    monkeypatch.delenv("KIMICODE_VIEW_TEST")
    assert "KIMICODE_VIEW_TEST" not in command_env()
    assert command_env() == expected()


def test_a_key_set_or_withheld_later_never_reaches_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(childenv, "_taken", {})
    assert "OPENAI_API_KEY" not in command_env()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-set-by-a-library-later")  # after a view was built
    assert "OPENAI_API_KEY" not in command_env()
    assert command_env(pass_env=["OPENAI_API_KEY"])["OPENAI_API_KEY"] == "sk-set-by-a-library-later"
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-moon")
    childenv.withhold_keys()  # moved out of os.environ: still withheld, still passed on when named
    assert "MOONSHOT_API_KEY" not in os.environ
    assert "MOONSHOT_API_KEY" not in command_env()
    assert command_env(pass_env=["MOONSHOT_API_KEY"])["MOONSHOT_API_KEY"] == "sk-moon"
    monkeypatch.setattr(childenv, "_taken", {"MOONSHOT_API_KEY": "sk-other"})  # the withheld keys changed
    assert command_env(pass_env=["MOONSHOT_API_KEY"])["MOONSHOT_API_KEY"] == "sk-other"


def test_the_bash_tool_runs_each_command_with_the_environment_of_that_moment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ctx = ToolContext(workspace=tmp_path)

    async def scenario() -> list[str]:
        tool, seen = BashTool(), []
        for value in ("first", "second"):
            monkeypatch.setenv("KIMICODE_VIEW_TEST", value)
            seen.append((await tool.run({"command": 'echo "[$KIMICODE_VIEW_TEST]"'}, ctx)).text)
        monkeypatch.delenv("KIMICODE_VIEW_TEST")
        seen.append((await tool.run({"command": 'echo "[${KIMICODE_VIEW_TEST-unset}]"'}, ctx)).text)
        return seen

    assert asyncio.run(scenario()) == [
        "[first]\n[exit code: 0]", "[second]\n[exit code: 0]", "[unset]\n[exit code: 0]"
    ]
