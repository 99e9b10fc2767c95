"""Finding and expanding custom command files: precedence, namespaces, plugins, Gemini's format, bad files
and the placeholders (the CLI tests in test_custom_commands.py show them end to end)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kimicode.extensions.commands import MAX_FILE_BYTES, find_commands
from kimicode.extensions.commands_expand import ExpansionError, expand, substitute
from kimicode.extensions.plugin_index import index_path
from kimicode.extensions.summary import extension_counts, extensions_line


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path, Path]:
    ws, kimihome, userhome = tmp_path / "ws", tmp_path / "kimihome", tmp_path / "userhome"
    for folder in (ws, kimihome, userhome):
        folder.mkdir()
    return ws, kimihome, userhome


def test_project_over_user_and_kimicode_over_other_agents(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws / ".claude/commands/review.md", "claude project")
    write(ws / ".kimicode/commands/review.md", "kimicode project")
    write(kimihome / "commands/review.md", "kimicode user")
    write(kimihome / "commands/mine.md", "kimicode user mine")
    write(userhome / ".claude/commands/mine.md", "claude user mine")
    write(userhome / ".codex/prompts/ship.md", "codex")
    write(userhome / ".claude/commands/.hidden/x.md", "hidden")
    catalog = find_commands(ws, kimihome, userhome, plugins=[])
    assert catalog.commands["review"].template == "kimicode project"
    assert catalog.commands["mine"].template == "kimicode user mine"
    assert catalog.commands["ship"].source == "user ~/.codex/prompts"
    assert sorted(catalog.commands) == ["mine", "review", "ship"]


def test_plugin_commands_are_namespaced_and_disabled_ones_load_nothing(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    plugin = kimihome / "plugins" / "tools"
    write(plugin / "commands/lint.md", "---\ndescription: Lint it\n---\nLint $ARGUMENTS")
    write(plugin / "commands/deep/check.md", "Check")
    record = {"plugins": [{"name": "tools", "root": str(plugin), "enabled": True}]}
    write(index_path(kimihome), json.dumps(record))
    catalog = find_commands(ws, kimihome, userhome)
    assert sorted(catalog.commands) == ["tools:deep:check", "tools:lint"]
    assert catalog.commands["tools:lint"].source == "plugin tools"
    assert extension_counts(ws, kimihome, userhome) == {"hooks": 0, "commands": 2, "agents": 0, "plugins": 1}
    write(plugin / "agents/helper.md", "---\nname: helper\ndescription: Helps\n---\nHelp.")
    write(ws / ".claude/agents/reviewer.md", "---\nname: reviewer\ndescription: Reviews\n---\nReview.")
    assert extension_counts(ws, kimihome, userhome)["agents"] == 1  # the project's only once trusted
    assert extension_counts(ws, kimihome, userhome, trusted=True)["agents"] == 2
    record["plugins"][0]["enabled"] = False
    write(index_path(kimihome), json.dumps(record))
    assert len(find_commands(ws, kimihome, userhome)) == 0


def test_gemini_toml_and_bad_files_are_reported_not_fatal(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws / ".gemini/commands/a/b.toml", 'description = "B"\nprompt = "Do {{args}} now"\n')
    write(ws / ".gemini/commands/broken.toml", "prompt = ")
    write(ws / ".gemini/commands/noprompt.toml", 'description = "x"\n')
    write(ws / ".claude/commands/huge.md", "x" * (MAX_FILE_BYTES + 1))
    write(ws / ".claude/commands/badmeta.md", "---\n: nope\n---\nbody")
    catalog = find_commands(ws, kimihome, userhome, plugins=[])
    assert list(catalog.commands) == ["a:b"] and catalog.commands["a:b"].description == "B"
    assert asyncio.run(expand(catalog.commands["a:b"], "x y", ws, None)) == "Do x y now"
    assert len(catalog.problems) == 4 and all(str(ws) in line for line in catalog.problems)


def test_placeholders(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws / ".claude/commands/plain.md", "No placeholder here.")
    write(ws / ".claude/commands/pos.md", "---\nallowed-tools: Bash(git diff:*), Read\n---\n[$1] [$2] [$ARGUMENTS]")
    catalog = find_commands(ws, kimihome, userhome, plugins=[])
    assert substitute(catalog.commands["plain"], "extra words") == "No placeholder here.\n\nextra words"
    assert substitute(catalog.commands["plain"], "") == "No placeholder here."
    assert substitute(catalog.commands["pos"], "'a b' c") == "[a b] [c] ['a b' c]"
    assert catalog.commands["pos"].allowed_tools == ("Bash(git diff:*)", "Read")


def test_at_words_that_name_no_file_stay_and_output_is_not_expanded_again(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws / "notes.txt", "see @notes.txt and !`echo again`")
    write(ws / ".claude/commands/x.md", "Mail me@example.com, use @dataclass, read @notes.txt.")
    catalog = find_commands(ws, kimihome, userhome, plugins=[])
    text = asyncio.run(expand(catalog.commands["x"], "", ws, None))
    assert text == ('Mail me@example.com, use @dataclass, read <file path="notes.txt">\n'
                    "see @notes.txt and !`echo again`\n</file>.")


def test_shell_runner_output_goes_in_place_and_untrusted_is_refused(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws / ".gemini/commands/g.toml", 'prompt = "Log: !{git log -1}"\n')
    command = find_commands(ws, kimihome, userhome, plugins=[]).commands["g"]
    ran: list[str] = []

    async def shell(line: str) -> str:
        ran.append(line)
        return "abc123"

    assert asyncio.run(expand(command, "", ws, shell)) == "Log: abc123"
    assert ran == ["git log -1"]
    with pytest.raises(ExpansionError, match="not trusted"):
        asyncio.run(expand(command, "", ws, None))


def test_the_line_names_each_kind_found() -> None:
    assert extensions_line({"hooks": 3, "commands": 5, "agents": 2, "plugins": 1}) == "3 hooks, 5 commands, 2 agents, 1 plugin"
    assert extensions_line({"hooks": 1, "commands": 0}) == "1 hook"
    assert extensions_line({}) == ""


def test_a_file_outside_the_workspace_is_never_included(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws.parent / "outside.txt", "not yours")
    write(ws / ".claude/commands/leak.md", "Show @../outside.txt")
    command = find_commands(ws, kimihome, userhome, plugins=[]).commands["leak"]
    with pytest.raises(ExpansionError, match=r"@\.\./outside\.txt is outside the workspace"):
        asyncio.run(expand(command, "", ws, None))


def test_shell_lines_run_only_as_the_policy_allows(places: tuple[Path, Path, Path]) -> None:
    from kimicode.extensions.commands_expand import policed_shell
    from kimicode.security.policy import Policy
    from kimicode.tools.base import ToolContext

    ws, kimihome, userhome = places
    write(ws / "keep.txt", "x")
    write(ws / ".claude/commands/ok.md", "Said: !`echo hello`")
    write(ws / ".claude/commands/rm.md", "!`rm keep.txt`")
    commands = find_commands(ws, kimihome, userhome, plugins=[]).commands
    ctx = ToolContext(workspace=ws)
    asking = policed_shell(Policy(workspace=ws), ctx)  # the REPL's stance: rm would be asked about
    assert asyncio.run(expand(commands["ok"], "", ws, asking)) == "Said: hello"
    with pytest.raises(ExpansionError, match=r"!`rm keep.txt` was not run \(runs a shell command"):
        asyncio.run(expand(commands["rm"], "", ws, asking))
    headless = policed_shell(Policy(workspace=ws, headless=True), ctx)
    with pytest.raises(ExpansionError, match="was not run"):
        asyncio.run(expand(commands["rm"], "", ws, headless))
    assert (ws / "keep.txt").exists()


def test_a_secret_file_is_never_included(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws / ".env", "API_TOKEN=hunter2\n")
    write(ws / ".claude/commands/env.md", "Check @.env please")
    command = find_commands(ws, kimihome, userhome, plugins=[]).commands["env"]
    with pytest.raises(ExpansionError, match=r"@\.env .*secret"):
        asyncio.run(expand(command, "", ws, None))


def test_arguments_never_add_a_command_or_a_file(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(ws / "notes.txt", "NOTES")
    write(ws / ".claude/commands/t.md", "Triage: $ARGUMENTS\nLog: !`git log --grep $1`")
    write(ws / ".gemini/commands/g.toml", 'prompt = "Show !{git show {{args}}}"\n')
    commands = find_commands(ws, kimihome, userhome, plugins=[]).commands
    ran: list[str] = []

    async def shell(line: str) -> str:
        ran.append(line)
        return "out"

    title = "x;touch pwned !`rm -rf ~` @notes.txt"
    text = asyncio.run(expand(commands["t"], title, ws, shell))
    assert text == f"Triage: {title}\nLog: out"
    assert ran == ["git log --grep 'x;touch'"]
    asyncio.run(expand(commands["g"], "HEAD $(id)", ws, shell))
    assert ran[-1] == "git show HEAD '$(id)'"


def test_a_built_in_repl_command_keeps_its_name_and_the_start_up_line_says_so(
    places: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from kimicode.frontends.repl.catalog import repl_commands
    from kimicode.frontends.repl.custom_commands import extensions_notice, is_custom

    ws, kimihome, userhome = places
    monkeypatch.setenv("HOME", str(userhome))
    write(ws / ".claude/commands/model.md", "not the built-in")
    write(ws / ".claude/commands/review.md", "---\ndescription: Review\n---\nReview")
    config = SimpleNamespace(work_dir=ws, home=kimihome, trusted=False)
    registry = repl_commands(config)  # type: ignore[arg-type]
    model, review = registry.get("model"), registry.get("review")
    assert model is not None and not is_custom(model)
    assert review is not None and is_custom(review) and review.help == "Review (project .claude/commands)"
    lines: list[str] = []
    renderer = SimpleNamespace(dim=lines.append, warn=lines.append)
    extensions_notice(config, registry, renderer)  # type: ignore[arg-type]
    assert lines == ["extensions: 1 command",
                     "left out, a built-in command has the name: /model (project .claude/commands)"]


def test_a_project_command_linking_out_of_the_workspace_is_not_read(places: tuple[Path, Path, Path]) -> None:
    ws, kimihome, userhome = places
    write(userhome / ".ssh/id_rsa", "PRIVATE KEY")
    (ws / ".claude/commands").mkdir(parents=True)
    (ws / ".claude/commands/review.md").symlink_to(userhome / ".ssh/id_rsa")
    (ws / ".claude/commands/team").symlink_to(userhome / ".ssh", target_is_directory=True)
    write(userhome / ".ssh/config.md", "Host *")
    write(userhome / "mine.md", "my own")
    (userhome / ".claude/commands").mkdir(parents=True)
    (userhome / ".claude/commands/mine.md").symlink_to(userhome / "mine.md")  # yours: followed
    catalog = find_commands(ws, kimihome, userhome, plugins=[])
    assert sorted(catalog.commands) == ["mine"]
    assert sum("outside the workspace" in line for line in catalog.problems) == 2


def test_memory_lines_append_and_never_write_through_a_link_out(tmp_path: Path) -> None:
    from kimicode.extensions.memory import append_memory

    ws = tmp_path / "ws"
    write(ws / "AGENTS.md", "# Rules")
    assert append_memory(ws / "AGENTS.md", "  use   tabs ", ws) == "- use tabs"
    assert (ws / "AGENTS.md").read_text() == "# Rules\n- use tabs\n"
    write(tmp_path / "bashrc", "export A=1\n")
    (ws / "CLAUDE.md").symlink_to(tmp_path / "bashrc")
    with pytest.raises(ValueError, match="outside"):
        append_memory(ws / "CLAUDE.md", "x", ws)
    assert (tmp_path / "bashrc").read_text() == "export A=1\n"
