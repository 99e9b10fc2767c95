"""What changes between two commands in one session sandbox, as root and as uid 1000, through the bash tool.

The sandbox's description (which secrets to hide, which paths to protect, what to bind) is worked out
once and reused while nothing it was built from has changed. Each test runs a few commands first, so
that the next one would reuse it, then changes the host between two commands (from the host, or from a
command itself) and checks that the next command is covered exactly as a freshly described sandbox
would cover it. Several changes put the folder's modification time back as it was (``touch -r``): a
check that trusted modification times would miss them.
"""

from __future__ import annotations

import os

import pytest

from tests.sandboxing import needs_bwrap
from tests.security.test_sandbox_escape import USERS, Box, base  # noqa: F401 - base: the fixture Box needs
from tests.security.test_session_sandbox import steps

WARM = [("sandbox", "true"), ("sandbox", "true")]  # enough commands for the next one to reuse the description
# Runs a host change with the workspace folder's times put back as they were before it.
SAME_TIMES = "touch -r . {ref} && {change} && touch -m -r {ref} . && echo changed"


@pytest.fixture(params=USERS)
def box(request: pytest.FixtureRequest, base: object) -> Box:  # noqa: F811 - the module's own fixture
    return Box(base, request.param)  # type: ignore[arg-type]


def hidden(result: dict[str, object], secret: str) -> None:
    assert "looked" in str(result["out"]), result["out"]  # the command ran to its end
    assert secret not in str(result["out"]), result["out"]


@needs_bwrap
def test_env_files_that_appear_between_commands_are_hidden_however_they_appear(box: Box) -> None:
    ref = box.outside / "times"
    (box.workspace / "notes").mkdir()
    (box.workspace / "notes" / "key").write_text("SECRET-LINKED-3\n")
    results = steps(
        box,
        *WARM,
        ("host", SAME_TIMES.format(ref=ref, change="echo SECRET-MADE-1 > .env")),
        ("sandbox", "cat .env; echo looked"),
        *WARM,
        ("host", SAME_TIMES.format(ref=ref, change="echo SECRET-MOVED-2 > plain && mv plain .env.production")),
        ("sandbox", "cat .env.production; echo looked"),
        *WARM,
        ("host", SAME_TIMES.format(ref=ref, change="ln -s notes/key .env.local")),
        ("sandbox", "cat .env.local; echo looked"),
    )
    assert [r["out"] for r in results if "changed" in str(r["out"])] and len(results) == 12
    hidden(results[3], "SECRET-MADE-1")
    hidden(results[7], "SECRET-MOVED-2")
    hidden(results[11], "SECRET-LINKED-3")


@needs_bwrap
def test_an_env_file_a_command_made_is_hidden_from_the_next_once_it_holds_a_secret(box: Box) -> None:
    results = steps(
        box,
        *WARM,
        ("sandbox", "echo mine > .env.local && echo made"),
        ("host", "echo SECRET-LATER-4 >> .env.local && echo changed"),
        ("sandbox", "cat .env.local; echo looked"),
    )
    assert "made" in str(results[2]["out"]) and "changed" in str(results[3]["out"])
    hidden(results[4], "SECRET-LATER-4")


@needs_bwrap
def test_secrets_of_the_user_and_of_kimicode_that_appear_between_commands_are_hidden(box: Box) -> None:
    # Both homes in the workspace (kimicode run in the home folder), where nothing else would hide them.
    box.userhome, box.home = box.workspace / "user", box.workspace / "user" / ".kimicode"
    box.home.mkdir(parents=True)
    for folder in (box.userhome, box.home):
        os.chown(folder, box.uid, box.uid)
    keys, config = box.userhome / ".ssh" / "id_ed25519", box.home / "config.toml"
    results = steps(
        box,
        *WARM,
        ("host", f"mkdir -p {keys.parent} && echo SECRET-SSH-5 > {keys} && echo changed"),
        ("sandbox", f"cat {keys}; echo looked"),
        *WARM,
        ("host", f"echo 'api_key = \"SECRET-CONFIG-6\"' > {config}.new && mv {config}.new {config} && echo changed"),
        ("sandbox", f"cat {config}; echo looked"),
    )
    hidden(results[3], "SECRET-SSH-5")
    hidden(results[7], "SECRET-CONFIG-6")


@needs_bwrap
def test_a_git_folder_replaced_by_a_link_or_moved_between_commands_stays_read_only(box: Box) -> None:
    box.repo()
    ref = box.outside / "times"
    plant = f"printf '{box.fsmonitor()}' >> {{git}}/config; echo x > {{git}}/planted; echo looked"
    results = steps(
        box,
        *WARM,
        ("host", SAME_TIMES.format(ref=ref, change="mv .git real-git && ln -s real-git .git")),
        ("sandbox", plant.format(git=".git")),
        ("sandbox", plant.format(git="real-git")),
        ("host", "rm .git && mv real-git .git && echo changed"),
        *WARM,
        ("host", SAME_TIMES.format(ref=ref, change="mkdir sub && mv .git sub/.git && mv sub/.git .git && rmdir sub")),
        ("sandbox", plant.format(git=".git")),
    )
    assert all("looked" in str(results[i]["out"]) for i in (3, 4, 9)), results
    assert all("changed" in str(results[i]["out"]) for i in (2, 5, 8)), results
    for folder in ("real-git", ".git"):
        assert not (box.workspace / folder / "planted").exists(), results
    assert "fsmonitor" not in (box.workspace / ".git" / "config").read_text()


@needs_bwrap
def test_a_worktree_git_file_pointed_elsewhere_between_commands_protects_where_it_now_leads(box: Box) -> None:
    box.repo()
    results = steps(
        box,
        ("host", "mv .git repo-git && printf 'gitdir: repo-git\\n' > .git && echo changed"),
        *WARM,
        ("host", "cp -r repo-git other-git && printf 'gitdir: other-git\\n' > .git.new && mv .git.new .git && echo changed"),
        ("sandbox", "echo x > other-git/planted; echo looked"),
        *WARM,
        ("host", "cp -r repo-git third-git && printf 'gitdir: third-git\\n' > .git && echo changed"),
        ("sandbox", "echo x > third-git/planted; echo looked"),
    )
    assert "looked" in str(results[4]["out"]) and "looked" in str(results[8]["out"]), results
    assert not (box.workspace / "other-git" / "planted").exists(), results[4]["out"]
    assert not (box.workspace / "third-git" / "planted").exists(), results[8]["out"]
