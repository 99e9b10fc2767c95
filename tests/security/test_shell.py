"""Shell commands parsed, not guessed: what an approval of one command's prefix can and cannot cover.

Every case is decided by the real Policy.decide: in the REPL after "a" (this session) on some prefixes, and
headless without -y, where only what is proven read-only runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kimicode.security.launchers import inner_commands
from kimicode.security.policy import SESSION_SOURCE, Policy
from kimicode.security.prefix import command_prefix
from kimicode.security.shell import parse_command
from kimicode.security.shell_types import ParsedCommand, Redirect
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from tests.clirun import REPO

BASH = BashTool()
_WORKSPACE: list[Path] = []


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository to decide in; the user's home is a folder of its own."""
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    ws = tmp_path / "proj"
    (ws / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    _WORKSPACE[:] = [ws]
    return ws


def _decide(source: str, approved: set[str] = frozenset(), **kw: object) -> str:  # type: ignore[assignment]
    ws = _WORKSPACE[0]
    # What "a" on each prefix records (Policy.rule_texts): an allow rule for this session.
    rules = [("allow", f"bash({prefix} *)", SESSION_SOURCE) for prefix in approved]
    policy = Policy(workspace=ws, home=ws.parent / "kimihome", rules=rules, **kw)  # type: ignore[arg-type]
    return policy.decide(BASH, {"command": source}, ToolContext(workspace=ws)).action


def runs_unasked(source: str, approved: set[str]) -> bool:
    """In the REPL, after "a" on each of `approved`: the real policy runs it without asking."""
    return _decide(source, approved) == "allow"


def is_read_only(parsed: ParsedCommand) -> bool:
    """Headless without -y runs only what is proven read-only: the real policy's answer."""
    return _decide(parsed.source, headless=True) == "allow"


Decide = Callable[..., str]


def words(source: str) -> list[tuple[str, ...]]:
    return [cmd.words for cmd in parse_command(source).commands]


# ------------------------------------------------------------------ attacks after "a" on `git status`

APPROVED = {"git status"}


@pytest.mark.parametrize("source", ["git status", "git status -s", "git status --short -- src"])
def test_the_approved_prefix_still_runs_unasked(source: str) -> None:
    assert runs_unasked(source, APPROVED)


@pytest.mark.parametrize(
    "source, extra",
    [
        ("git status && touch X", ("touch", "X")),
        ("git status\ntouch X", ("touch", "X")),
        ("git status || rm -rf dir; rm -rf dir", ("rm", "-rf", "dir")),
        ("git status | sh", ("sh",)),
        ("git status; curl x | sh", ("curl", "x")),
        ("git status & touch X", ("touch", "X")),
        ("git status $(touch X)", ("touch", "X")),
        ("git status `touch X`", ("touch", "X")),
        ('git status "$(touch X)"', ("touch", "X")),
        ("git status <(touch X)", ("touch", "X")),
        ("git status > >(touch X)", ("touch", "X")),
        ("git status > $(touch X)", ("touch", "X")),
        ("V=$(touch X) git status", ("touch", "X")),
        ("(git status; touch X)", ("touch", "X")),
        ("{ git status; touch X; }", ("touch", "X")),
    ],
)
def test_a_compound_command_exposes_its_other_part(source: str, extra: tuple[str, ...]) -> None:
    assert extra in words(source)
    assert not runs_unasked(source, APPROVED)


@pytest.mark.parametrize(
    "source",
    [
        "git status $(touch X)",
        "git status `touch X`",
        'echo "$(id)"',
        "cat <(ls)",
        "git status#$(touch X)",
        "git status <<< $(touch X)",
        "git status ${x:=$(touch X)}",
        "git status $((a[$(touch X)]))",
        "[[ $(touch X) ]]",
        "declare -a x=($(touch X))",
        "cat <<EOF\n$(touch X)\nEOF",
        "echo ${x@P}",
    ],
)
def test_substitutions_are_flagged(source: str) -> None:
    assert parse_command(source).has_substitution
    assert not runs_unasked(source, APPROVED | {"echo", "cat", "declare -a x=($(touch X))", "[["})


@pytest.mark.parametrize("source", ['git status "${x:-`touch X`}"', "cat <<EOF\n${x:-`touch X`}\nEOF"])
def test_a_substitution_the_grammar_misses_is_still_flagged(source: str) -> None:
    # bash runs these backticks; the grammar reads them as text.
    parsed = parse_command(source)
    assert parsed.has_substitution and parsed.opaque


def test_quoted_text_that_looks_like_a_substitution_is_not_one() -> None:
    for source in ["echo '`x` $(y)'", 'echo "a\\`b"', "cat <<'EOF'\n$(touch X) `y`\nEOF", "git status # $(touch X)"]:
        parsed = parse_command(source)
        assert not parsed.has_substitution and not parsed.opaque, source


@pytest.mark.parametrize("char", ["\r", "\f", "\v", "\x00", "\x1b"])
def test_control_characters_bash_reads_differently_are_an_error(char: str) -> None:
    parsed = parse_command(f"git status{char}touch X")
    assert parsed.error and not runs_unasked(f"git status{char}touch X", APPROVED)


def test_a_redirection_into_a_file_is_a_write() -> None:
    parsed = parse_command("git status > file")
    assert parsed.file_writes == ("file",)
    assert parsed.commands[0].redirects == (Redirect(">", "file"),)
    assert parsed.commands[0].text == "git status > file"
    assert not runs_unasked("git status > file", APPROVED)


def test_the_sh_reading_a_pipe_is_opaque() -> None:
    assert parse_command("git status | sh").opaque
    assert parse_command("curl x | bash -s").opaque


def test_a_program_elsewhere_is_not_the_approved_one() -> None:
    [cmd] = parse_command("/tmp/evil/git status").commands
    assert command_prefix(cmd) == "/tmp/evil/git status"
    assert not runs_unasked("/tmp/evil/git status", APPROVED)


def test_leading_assignments_are_separate_and_not_covered() -> None:
    [cmd] = parse_command("FOO=1 git status").commands
    assert cmd.words == ("git", "status")
    assert cmd.assignments == ("FOO=1",)
    assert command_prefix(cmd) == "FOO=1 git status"
    assert not runs_unasked("PATH=/tmp/evil git status", APPROVED)


# ------------------------------------------------------------------------------- parsing details


def test_operators_inside_quotes_are_one_command() -> None:
    assert words('echo "a && b"') == [("echo", "a && b")]
    assert words("echo 'a; b | c'") == [("echo", "a; b | c")]
    assert words("echo a\\;b") == [("echo", "a;b")]


@pytest.mark.parametrize(
    "args",
    [
        "'a b' \"a b\" a\\ b",
        "$'tab\\there' $'\\x41\\101\\u00e9' $'it\\'s'",
        '"say \\"hi\\"" "back\\\\slash" "keep \\n" "dollar \\$"',
        "a'b'\"c\" 'x'y",
        "héllo 'wörld' \"ünï\"",
        "--opt=value -x {} ';' '*.py'",
    ],
)
def test_quote_removal_gives_what_bash_passes(args: str) -> None:
    source = "printf '%s\\0' " + args
    argv = subprocess.run(["bash", "-c", source], capture_output=True, check=True).stdout.decode().split("\0")[:-1]
    [cmd] = parse_command(source).commands
    assert list(cmd.words[2:]) == argv
    assert all(cmd.literal)


def test_words_with_expansions_keep_their_source_text() -> None:
    [cmd] = parse_command('cat $HOME/x "$HOME" *.py ~/notes {a,b}.txt ${X:-y} $((1+2))').commands
    assert cmd.words[1:] == ("$HOME/x", '"$HOME"', "*.py", "~/notes", "{a,b}.txt", "${X:-y}", "$((1+2))")
    assert not any(cmd.literal[1:])
    assert not parse_command("echo $((1+2))").has_substitution


def test_comments_continuations_and_background() -> None:
    assert words("ls # && rm -rf x") == [("ls",)]
    assert words("git status \\\n  --short") == [("git", "status", "--short")]
    assert words("sleep 1 & ls") == [("sleep", "1"), ("ls",)]


def test_fd_dups_devices_and_heredocs_are_not_writes() -> None:
    for source in ("ls >&2", "ls 2>&1", "ls 2>/dev/null", "ls &>/dev/null", "ls >&-", "ls < in", "ls 1>&2-"):
        assert parse_command(source).file_writes == (), source
    heredoc = parse_command("cat <<EOF\nx > y\nEOF")
    assert heredoc.file_writes == ()
    assert heredoc.commands[0].redirects == (Redirect("<<", "EOF"),)
    assert is_read_only(heredoc)


def test_every_kind_of_output_redirection_is_a_write() -> None:
    parsed = parse_command("a > f1; a >> f2; a &> f3; a >| f4; a 2> f5; a &>> f6; a >& f7")
    assert parsed.file_writes == ("f1", "f2", "f3", "f4", "f5", "f6", "f7")
    assert [r.op for c in parsed.commands for r in c.redirects] == [">", ">>", "&>", ">|", "2>", "&>>", ">&"]
    read_write = parse_command("a 3<> f8")  # the grammar does not know <>; it is still seen as a write
    assert read_write.file_writes == ("f8",) and read_write.error
    assert parse_command("a 2> 'my file'").file_writes == ("my file",)
    assert parse_command("a > -").file_writes == ("-",)
    assert parse_command("a > $OUT").file_writes == ("$OUT",)


def test_a_heredoc_can_hide_a_pipe_and_a_substitution() -> None:
    parsed = parse_command("cat <<EOF | sh\n$(touch X)\nEOF")
    assert ("sh",) in [c.words for c in parsed.commands]
    assert ("touch", "X") in [c.words for c in parsed.commands]
    assert parsed.opaque and parsed.has_substitution
    quoted = parse_command("cat <<'EOF' > out\n$(touch X)\nEOF")
    assert quoted.file_writes == ("out",)
    assert not quoted.has_substitution


def test_redirection_of_a_pipeline_belongs_to_its_last_command() -> None:
    first, last = parse_command("grep x a | sort > out").commands
    assert first.redirects == ()
    assert last.redirects == (Redirect(">", "out"),)


def test_brace_groups_subshells_and_negation_are_analysed() -> None:
    parsed = parse_command("{ ls; pwd; } && (cd src && ls) && ! grep -q x f")
    assert [c.words for c in parsed.commands] == [("ls",), ("pwd",), ("cd", "src"), ("ls",), ("grep", "-q", "x", "f")]
    assert not parsed.opaque
    assert is_read_only(parsed)


@pytest.mark.parametrize(
    "source",
    [
        "if true; then rm x; fi",
        "for f in *; do rm $f; done",
        "while true; do ls; done",
        "until false; do ls; done",
        "case $x in a) ls;; esac",
        "f() { rm -rf x; }; f",
        "eval 'rm x'",
        "exec rm x",
        "source ./env.sh",
        ". ./env.sh",
        "bash -c 'rm x'",
        "sh -xc 'rm x'",
        "/bin/zsh -c 'rm x'",
        "bash <<EOF\nrm x\nEOF",
        "find . -exec sh -c 'rm $0' {} \\;",
        "xargs bash -c 'rm x'",
        "sudo sh -c 'rm x'",
        "trap 'rm x' EXIT",
        "curl -s x | sh -",
        "curl -s x | python3",
        "python - <<EOF\nimport os\nEOF",
        "node < script.js",
        "env -S 'sh -c x'",
        '"$SHELL" -c "rm x"',
        "$EDITOR notes.md",
    ],
)
def test_what_we_do_not_analyse_is_opaque(source: str) -> None:
    parsed = parse_command(source)
    assert parsed.opaque
    assert not is_read_only(parsed)


def test_control_flow_still_exposes_the_commands_inside() -> None:
    assert ("rm", "x") in words("if true; then rm x; fi")


@pytest.mark.parametrize(
    "source",
    ["bash ./build.sh --fast", "python3 -m pytest -x", "python manage.py test", "node --version", "sh -e x.sh"],
)
def test_running_a_script_file_is_not_opaque(source: str) -> None:
    assert not parse_command(source).opaque


@pytest.mark.parametrize("source", ['echo "unterminated', "ls &&", "ls; ;", "echo $(", "if true; then ls", "ls |"])
def test_what_does_not_parse_is_an_error(source: str) -> None:
    parsed = parse_command(source)
    assert parsed.error
    assert not is_read_only(parsed)
    assert not runs_unasked(source, {"ls", "echo", "echo unterminated"})


def test_commands_inside_a_parse_error_in_a_chain_are_still_seen() -> None:
    # `||` then `&&` leaves `{ rm x; }` inside a parse error at the second level of an `a && b || ...` chain.
    source = "{ a && b || && { rm x; } rm y; } > out"
    parsed = parse_command(source)
    assert parsed.error
    by_words = {cmd.words: cmd for cmd in parsed.commands}
    assert ("rm", "x") in by_words
    # Run directly by the group, so the group's redirection is its own too.
    assert by_words[("rm", "x")].redirects == (Redirect(">", "out"),)
    ws = _WORKSPACE[0]
    policy = Policy(workspace=ws, home=ws.parent / "kimihome", rules=[("deny", "bash(rm *)", "config")], yolo=True)
    decision = policy.decide(BASH, {"command": source}, ToolContext(workspace=ws))
    assert decision.action == "deny" and "rm" in decision.reason


def test_bare_and_declared_assignments_are_parts_of_their_own() -> None:
    assignment, git = parse_command("PATH=/tmp/evil; git status").commands
    assert assignment.words == () and assignment.assignments == ("PATH=/tmp/evil",)
    assert command_prefix(assignment) == "PATH=/tmp/evil"
    [export] = parse_command("export PATH=/tmp/evil:$PATH").commands
    assert command_prefix(export) == "export PATH=/tmp/evil:$PATH"


def test_parsing_is_cached_and_returns_the_same_object() -> None:
    assert parse_command("git log -n 3") is parse_command("git log -n 3")
    assert isinstance(parse_command("ls"), ParsedCommand)


def test_importing_kimicode_does_not_load_the_grammar() -> None:
    probe = "import sys, kimicode.security.shell, kimicode.cli; print('tree_sitter' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    version = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kimicode", "--version"], cwd=REPO, capture_output=True, text=True
    )
    assert version.returncode == 0
    assert "tree_sitter" not in version.stderr


# ---------------------------------------------------------------------------------------- prefixes


@pytest.mark.parametrize(
    "source, prefix",
    [
        ("git status --short", "git status"),
        ("npm test", "npm test"),
        ("pytest -x tests", "pytest"),
        ("ls -la", "ls"),
        ("make build", "make build"),
        ("git -C sub status", "git -C sub status"),
        ("git --no-pager log -3", "git --no-pager log"),
        ("git -c core.pager=evil log", "git -c core.pager=evil log"),
        ("npm run build -- --watch", "npm run build"),
        ("uv run pytest -x", "uv run pytest"),
        ("uv run python -c 'import os'", "uv run python -c import os"),
        ("python -m pytest -q", "python -m pytest"),
        ("python3 -c 'print(1)'", "python3 -c print(1)"),
        ("python manage.py migrate --fake", "python manage.py migrate"),
        ("node -e 'x()'", "node -e x()"),
        ("sudo rm -rf /", "sudo rm"),
        ("sudo -u bob git push", "sudo -u bob git push"),
        ("timeout 10 pytest -x", "timeout 10 pytest"),
        ("timeout -s KILL 10 rm -rf x", "timeout -s KILL 10 rm"),
        ("env FOO=1 make test", "env FOO=1 make test"),
        ("env -S 'rm -rf x'", "env -S rm -rf x"),
        ("xargs rm -f", "xargs rm"),
        ("xargs -0 -n1 rm", "xargs -0 -n1 rm"),
        ("nice -n 5 make", "nice -n 5 make"),
        ("find . -name '*.py'", "find"),
        ("find . -delete", "find -delete"),
        ("find . -name x -exec rm -f {} +", "find -exec rm"),
        ("'git' status", "git status"),
        ("./run.sh test", "./run.sh test"),
    ],
)
def test_command_prefix(source: str, prefix: str) -> None:
    [cmd] = parse_command(source).commands
    assert command_prefix(cmd) == prefix


def test_approving_one_wrapped_command_does_not_cover_another() -> None:
    for approved, other in [
        ("timeout 10 pytest", "timeout 10 rm -rf ~"),
        ("xargs grep", "xargs rm"),
        ("find -delete", "find . -exec rm {} +"),
        ("python -m pytest", "python -c 'import shutil'"),
        ("git -C sub status", "git -C sub push"),
        ("npm run test", "npm run evil"),
    ]:
        assert not runs_unasked(other, {approved}), other


def test_inner_commands_name_what_wrappers_run() -> None:
    [sudo] = parse_command("sudo -u bob env A=1 rm -rf x").commands
    assert inner_commands(sudo) == (("env", "A=1", "rm", "-rf", "x"), ("rm", "-rf", "x"))
    [find] = parse_command("find . -exec grep -l x {} ';' -exec rm {} +").commands
    assert inner_commands(find) == (("grep", "-l", "x", "{}"), ("rm", "{}"))
    [plain] = parse_command("ls -la").commands
    assert inner_commands(plain) == ()


# ---------------------------------------------------------------------------------------- read-only


@pytest.mark.parametrize(
    "source",
    [
        "ls -la",
        "cat README.md | head -20",
        "grep -rn 'def main' src | wc -l",
        "rg -n TODO --glob '*.py'",
        "find . -name '*.py' -type f",
        "git status",
        "git --no-pager log --oneline -5",
        "git diff HEAD~1 -- src",
        "git show HEAD:README.md",
        "git branch",
        "git branch -a -v",
        "git branch --list 'feat/*'",
        "git branch --contains HEAD",
        "git rev-parse --show-toplevel",
        "git -C sub status",
        "sed -n 1p file",
        "[[ -f x ]] && test -d sub",
        "pwd && echo done",
        "sort -u names.txt | uniq -c",
        "sort -k2 -t, data.csv",
        "uniq -c sorted.txt",
        "du -sh . 2>/dev/null",
        "tree -L 2",
        "file image.png",
        "date +%s",
        "date -Iseconds",
        "sort -t o -k 2 data",
        "git log --output-indicator-new=+ -p",
        "rg --pretty TODO",
        "env",
        "wc -l src/*.py",
        "diff a.txt b.txt",
        "cut -d: -f1 /etc/passwd | tr a-z A-Z",
        "which python3",
        "command -v git",
        "stat -c %s f && basename /a/b && dirname /a/b && realpath .",
        "cat <<EOF\nhello\nEOF",
        "[ -f x ] && cat x",
        "ls 2>&1 | grep x",
    ],
)
def test_read_only(source: str) -> None:
    assert is_read_only(parse_command(source))


@pytest.mark.parametrize(
    "source",
    [
        "find . -delete",
        "find . -name '*.pyc' -exec rm {} +",
        "find . -execdir rm {} ';'",
        "find . -ok rm {} ';'",
        "find . -fprint out.txt",
        "find . -fls out.txt",
        "find . $ACTION",
        "find . {-delete,}",
        "sort -o out.txt in.txt",
        "sort -uo out.txt in.txt",
        "sort --output=out.txt in.txt",
        "sort --compress-program=sh big.txt",
        "sort --outp=out.txt in.txt",
        "sort -t, -uo out.txt in.txt",
        "git diff --out=f",
        "git diff --ext",
        "date --se=2020-01-01",
        "file --comp -m magic",
        "uniq in.txt out.txt",
        "git branch -D feature",
        "git branch -d feature",
        "git branch -m old new",
        "git branch new-branch",
        "git branch --set-upstream-to=origin/main",
        "git log --output=f",
        "git log --output f",
        "git diff --ext-diff",
        "git -c core.pager=sh log",
        "git push",
        "git commit -m x",
        "git checkout .",
        "rg --pre sh pattern",
        "rg --pre=./evil pattern",
        "sed -i s/a/b/ file",
        "sed -n 'w out' file",
        "awk '{print}' file",
        "ls | tee out.txt",
        "echo hi | tee -a log",
        "find . -name '*.tmp' | xargs rm",
        "ls | xargs cat",
        "less README.md",
        "more README.md",
        "env rm -rf x",
        "env FOO=1 ls",
        "FOO=1 ls",
        "X=1",
        "echo hi > out.txt",
        "cat a >> b",
        "ls $(pwd)",
        "echo `id`",
        "cat < /dev/tcp/example.com/80",
        "tree -o out.txt",
        "file -C -m magic",
        "date -s '2020-01-01'",
        "hostname evil",
        "printf -v x %s y",
        "command rm x",
        "/tmp/evil/ls",
        "$CMD -la",
        "touch x",
        "rm -rf build",
        "curl https://example.com",
        "ls; rm x",
        "ls && touch x",
        "for f in *; do cat $f; done",
        "",
    ],
)
def test_not_read_only(source: str) -> None:
    assert not is_read_only(parse_command(source))


def test_a_long_chain_is_analysed_and_deep_nesting_is_refused() -> None:
    chain = parse_command(" && ".join(["echo x"] * 2000) + " && touch X")
    assert len(chain.commands) == 2001 and chain.commands[-1].words == ("touch", "X")
    deep = parse_command("echo " + "$(echo " * 600 + ")" * 600)
    assert deep.error and deep.opaque and not is_read_only(deep)
