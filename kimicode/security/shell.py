"""Shell commands parsed, not guessed: what a bash command line runs, writes and hides.

The grammar is tree-sitter's bash grammar. Everything the grammar does not tell us precisely is reported
rather than guessed: `opaque` for code we do not analyse (loops, functions, `eval`, `bash -c` ...), `error`
for text that does not parse. The policy decides what to do with those; here we only describe the command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Node


@dataclass(frozen=True)
class Redirect:
    op: str  # ">", ">>", "&>", "<", "2>", ">&", "<<" (heredoc; target is the delimiter) ...
    target: str  # the file (unquoted) or fd


@dataclass(frozen=True)
class SimpleCommand:
    words: tuple[str, ...]  # argv with quotes removed; a word containing an expansion keeps its source text
    text: str  # source text of this simple command
    assignments: tuple[str, ...]  # leading VAR=value
    redirects: tuple[Redirect, ...]
    # Per word: True when the word is plain text after quote removal (no $var, glob, brace or ~ expansion).
    # An expanded word can turn into anything at run time, an option included.
    literal: tuple[bool, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class ParsedCommand:
    source: str
    commands: tuple[SimpleCommand, ...]  # every simple command, those inside substitutions included
    has_substitution: bool  # $( ), backticks, <( ), >( ), ${x@P}
    file_writes: tuple[str, ...]  # output redirection targets, except /dev/null, /dev/stdout, /dev/stderr, fd dups
    opaque: bool  # constructs not analysed: functions, loops, if/case, eval, exec, source, shells given code ...
    error: str  # "" or why it did not parse
    # Arithmetic or array subscripts bash evaluates while expanding ($(( )), (( )), ${a[i]}, ${x:off}) and
    # expansions that assign (${x:=v}): a subscript's text is expanded again, $( ) inside it included.
    evaluates: bool = False
    # Code whose commands are not all among `commands`: a substitution the grammar reads as text, a function
    # definition (its name then runs its body), nesting too deep to walk.
    hidden: bool = False


# --------------------------------------------------------------------------------------------- parsing

# Output targets that are not files. (`> -` is a file named "-".)
_NOT_WRITES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/1", "/dev/fd/2"})

# Statement node types the walker knows. Anything else is walked generically (children searched for
# statements and substitutions) and, when it is control flow, marks the command opaque.
_OPAQUE_STATEMENTS = frozenset(
    {
        "function_definition",
        "for_statement",  # also `select`
        "c_style_for_statement",
        "while_statement",  # also `until`
        "if_statement",
        "case_statement",
    }
)
_STATEMENTS = frozenset(
    {
        "command",
        "redirected_statement",
        "pipeline",
        "list",
        "subshell",
        "compound_statement",
        "negated_command",
        "variable_assignment",
        "variable_assignments",
        "declaration_command",
        "unset_command",
        "test_command",
    }
    | _OPAQUE_STATEMENTS
)
_SUBSTITUTIONS = frozenset({"command_substitution", "process_substitution"})

# Programs whose arguments are code, or that change how later code is read: we cannot see what they run.
_OPAQUE_PROGRAMS = frozenset({"eval", "exec", "source", ".", "trap", "alias", "enable", "coproc", "watch", "fc"})
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "ash", "busybox"})


@lru_cache(maxsize=1)
def _parser() -> Any:
    # Imported here so that starting kimicode (--version, --help) never pays for the grammar.
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


class _Walk:
    """One pass over a syntax tree, collecting what ParsedCommand reports."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.commands: list[SimpleCommand] = []
        self.substitution = False
        self.writes: list[str] = []
        self.opaque = False
        self.evaluates = False
        self.hidden = False

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    # ---- statements

    def statement(self, node: Node) -> list[int]:
        """Walk one statement; return the indices of the simple commands it runs directly (not in substitutions)."""
        kind = node.type
        if kind == "command":
            return [self.command(node)]
        if kind == "redirected_statement":
            return self.redirected(node)
        if kind in ("variable_assignment", "variable_assignments"):
            return [self.bare_assignments(node)]
        if kind in ("declaration_command", "unset_command", "test_command"):
            return [self.builtin_like(node)]
        if kind == "list":
            return self.command_list(node)
        if kind in _OPAQUE_STATEMENTS:
            self.opaque = True
            self.hidden = self.hidden or kind == "function_definition"
        elif kind == "compound_statement" and node.child_count and node.children[0].type == "((":
            self.evaluates = True  # (( expr )): arithmetic
        return self.children(node)

    def children(self, node: Node) -> list[int]:
        direct: list[int] = []
        for child in node.children:
            if child.type in _STATEMENTS:
                direct += self.statement(child)
            elif child.type == "ERROR":
                direct += self.children(child)
            elif child.type != "comment":
                self.scan(child)
        return direct

    def command_list(self, node: Node) -> list[int]:
        # `a && b || c` nests to the left, one level per operator: walk the spine without recursing, so a
        # long chain does not exhaust Python's stack.
        spine = [node]
        while spine[-1].child_count and spine[-1].children[0].type == "list":
            spine.append(spine[-1].children[0])
        direct = self.children(spine.pop())
        for level in reversed(spine):
            for child in level.children[1:]:
                if child.type in _STATEMENTS:
                    direct += self.statement(child)
                elif child.type == "ERROR":
                    direct += self.children(child)
                elif child.type != "comment":
                    self.scan(child)
        return direct

    def redirected(self, node: Node) -> list[int]:
        body = node.child_by_field_name("body")
        direct: list[int] = []
        if body is not None and body.type == "pipeline":
            # `a | b > f`: the redirection belongs to the last command of the pipeline.
            for child in body.children:
                if child.type in _STATEMENTS:
                    direct = self.statement(child)
                elif child.type != "comment":
                    self.scan(child)
        elif body is not None:
            direct = self.statement(body)
        redirects: list[Redirect] = []
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "body":
                continue
            if child.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                redirects += self.redirect(child)
            elif child.type in _STATEMENTS:
                self.statement(child)
            elif child.type != "comment":
                self.scan(child)
        # A single command keeps its redirections in its text: the question shows `git status > file`.
        whole = self.text(node) if body is not None and body.type == "command" else None
        for i in direct:
            cmd = self.commands[i]
            self.commands[i] = SimpleCommand(
                cmd.words, whole or cmd.text, cmd.assignments, cmd.redirects + tuple(redirects), cmd.literal
            )
        return direct

    def command(self, node: Node) -> int:
        index = len(self.commands)
        self.commands.append(SimpleCommand((), "", (), ()))  # placeholder keeps source order
        words: list[str] = []
        literal: list[bool] = []
        assignments: list[str] = []
        redirects: list[Redirect] = []
        children = node.children
        for i, child in enumerate(children):
            kind = child.type
            if kind == "variable_assignment":
                assignments.append(self.assignment(child))
            elif kind in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                redirects += self.redirect(child)
            elif kind == "command_name":
                inner = child.named_children[0] if child.named_children else child
                value, plain = self.word(inner)
                words.append(value)
                literal.append(plain)
            elif kind == "comment":
                continue
            elif kind == "$" and i + 1 < len(children) and children[i + 1].type == "string":
                continue  # $"..." (a translated string): the string that follows is the word
            elif child.is_named or node.field_name_for_child(i) == "argument":
                value, plain = self.word(child)
                words.append(value)
                literal.append(plain)
        self.commands[index] = SimpleCommand(
            tuple(words), self.text(node), tuple(assignments), tuple(redirects), tuple(literal)
        )
        if words:
            self.check_program(words, literal)
        return index

    def check_program(self, words: list[str], literal: list[bool]) -> None:
        if not literal[0]:
            self.opaque = True  # `$CMD args`: which program runs is decided at run time
            return
        for argv in [words, *_inner_argvs(words)]:
            if argv and _runs_hidden_code(argv):
                self.opaque = True

    def bare_assignments(self, node: Node) -> int:
        index = len(self.commands)
        self.commands.append(SimpleCommand((), "", (), ()))  # placeholder keeps source order
        parts = [node] if node.type == "variable_assignment" else node.named_children
        assignments = tuple(self.assignment(p) for p in parts if p.type == "variable_assignment")
        self.commands[index] = SimpleCommand((), self.text(node), assignments, ())
        return index

    def builtin_like(self, node: Node) -> int:
        """`export A=1`, `unset x`, `[[ -f x ]]`: recorded as a command whose words are its tokens."""
        index = len(self.commands)
        self.commands.append(SimpleCommand((), "", (), ()))
        words: list[str] = []
        literal: list[bool] = []
        self.tokens(node, words, literal)
        self.commands[index] = SimpleCommand(tuple(words), self.text(node), (), (), tuple(literal))
        return index

    def tokens(self, node: Node, words: list[str], literal: list[bool]) -> None:
        for child in node.children:
            kind = child.type
            if kind == "variable_assignment":
                words.append(self.assignment(child))
                literal.append(True)
            elif kind in _WORDS:
                value, plain = self.word(child)
                words.append(value)
                literal.append(plain)
            elif child.child_count == 0:
                words.append(self.text(child))
                literal.append(True)
            else:
                self.tokens(child, words, literal)

    def assignment(self, node: Node) -> str:
        value = node.child_by_field_name("value")
        name = node.child_by_field_name("name")
        if value is None or name is None:
            self.scan(node)
            return self.text(node)
        self.scan(name)  # a[$(cmd)]=1
        unquoted, plain = self.word(value)
        if not plain:
            return self.text(node)
        operator = self.data[name.end_byte : value.start_byte].decode("utf-8", "replace")
        return self.text(name) + operator + unquoted

    def redirect(self, node: Node) -> list[Redirect]:
        if node.type == "herestring_redirect":
            target = node.named_children[-1] if node.named_children else None
            return [Redirect("<<<", self.word(target)[0] if target is not None else "")]
        if node.type == "heredoc_redirect":
            # `cat <<EOF > out | sh`: the grammar nests what follows the delimiter inside the heredoc node.
            found: list[Redirect] = []
            start = ""
            quoted = False
            for child in node.children:
                if child.type == "heredoc_start":
                    raw = self.text(child)
                    quoted = any(c in raw for c in "'\"\\")
                    start = raw.strip("'\"\\")
                elif child.type in ("file_redirect", "herestring_redirect"):
                    found += self.redirect(child)
                elif child.type in _STATEMENTS:
                    self.statement(child)
                elif child.type != "heredoc_body" or not quoted:
                    self.scan(child)  # the body: $( ) inside runs unless the delimiter is quoted
            return [Redirect("<<", start), *found]
        descriptor = node.child_by_field_name("descriptor")
        destination = node.child_by_field_name("destination")
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) != "destination":
                self.scan(child)
        if destination is None:
            return [Redirect(self.text(node).strip(), "")]  # `>&-` closes a descriptor
        start = descriptor.end_byte if descriptor is not None else node.start_byte
        # The text between descriptor and target, not the grammar's tokens: `<>` parses as `<` and an error.
        operator = self.data[start : destination.start_byte].decode("utf-8", "replace").strip()
        op = (self.text(descriptor) if descriptor is not None else "") + operator
        target, _ = self.word(destination)
        fd_dup = operator in (">&", "<&") and _FD.match(target) is not None
        writes = operator in (">", ">>", ">|", "&>", "&>>", "<>") or (operator == ">&" and not fd_dup)
        if writes and target not in _NOT_WRITES:
            self.writes.append(target)
        return [Redirect(op, target)]

    # ---- words

    def scan(self, node: Node) -> None:
        """Find substitutions anywhere below a word, redirect or assignment, and walk the commands inside."""
        kind = node.type
        if kind in _SUBSTITUTIONS:
            self.substitution = True
            self.children(node)
            return
        if kind in _EVALUATED or (kind == "expansion" and not _PLAIN_EXPANSION.match(self.text(node))):
            self.evaluates = True
        if kind == "expansion" and _PROMPT_EXPANSION.search(self.text(node)):
            self.substitution = True  # ${x@P} expands a prompt string, which runs $( ) inside the value
        elif kind in _STATEMENTS:
            self.statement(node)
            return
        elif kind in _TEXT_LEAVES and node.named_child_count == 0:
            # The grammar reads some substitutions as plain text (backticks inside ${x:-...}); bash runs them.
            if _HIDDEN_SUBSTITUTION.search(_ESCAPED.sub("", self.text(node))):
                self.substitution = True
                self.opaque = True  # something runs that we cannot see
                self.hidden = True
        for child in node.children:
            self.scan(child)

    def word(self, node: Node) -> tuple[str, bool]:
        """The word after quote removal, and whether it is plain text (else its source text is kept)."""
        self.scan(node)
        value = self.literal(node)
        return (value, True) if value is not None else (self.text(node), False)

    def literal(self, node: Node) -> str | None:
        kind = node.type
        raw = self.text(node)
        if kind == "word":
            if raw.startswith("~") or _GLOB.search(raw) or _BRACE.search(raw):
                return None
            return _UNESCAPE_WORD.sub(_unescape_one, raw)
        if kind in ("number", "test_operator"):
            return raw
        if kind == "raw_string":
            return raw[1:-1]
        if kind in ("string", "translated_string"):
            if any(c.is_named and c.type != "string_content" for c in node.children):
                return None
            inner = raw[raw.index('"') + 1 : -1] if raw.endswith('"') else raw
            return _UNESCAPE_DQUOTE.sub(_unescape_one, inner)
        if kind == "ansi_c_string":
            return _ansi_c(raw[2:-1])
        if kind == "concatenation":
            if _BRACE.search(raw):
                return None
            parts = [self.literal(c) for c in node.children]
            return None if any(p is None for p in parts) else "".join(p for p in parts if p is not None)
        return None  # expansions, substitutions, arithmetic, brace expressions ...


_WORDS = frozenset(
    {
        "word",
        "number",
        "string",
        "raw_string",
        "ansi_c_string",
        "translated_string",
        "concatenation",
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
        "brace_expression",
        "regex",
        "extglob_pattern",
        "test_operator",
        "variable_name",
    }
)
_TEXT_LEAVES = frozenset({"word", "regex", "string_content", "heredoc_content", "heredoc_body", "extglob_pattern"})
_ESCAPED = re.compile(r"\\.", re.S)
_HIDDEN_SUBSTITUTION = re.compile(r"`|\$\(")
_FD = re.compile(r"^\d*-?$")  # `>&2`, `>&-` (close), `2>&1-` (move)
_GLOB = re.compile(r"(?<!\\)[*?\[]")
_BRACE = re.compile(r"(?<!\\)\{[^{}]*(,|\.\.)[^{}]*(?<!\\)\}")
_UNESCAPE_WORD = re.compile(r"\\(\n|.)", re.S)
_UNESCAPE_DQUOTE = re.compile(r'\\([$`"\\\n])')
_PROMPT_EXPANSION = re.compile(r"@P\}$")
# ${NAME}, ${#NAME}, ${1}, ${@}: nothing evaluated, nothing assigned.
_PLAIN_EXPANSION = re.compile(r"^\$\{#?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])\}$")
_EVALUATED = frozenset({"arithmetic_expansion", "subscript"})
_ANSI_C = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_ANSI_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b", "E": "\x1b"}


def _unescape_one(match: re.Match[str]) -> str:
    char = match.group(1)
    return "" if char == "\n" else char  # a backslash-newline is a line continuation


def _ansi_c(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc[0] in "xuU":
            return chr(int(esc[1:], 16))
        if esc[0].isdigit():
            return chr(int(esc, 8))
        if esc[0] == "c" and len(esc) == 2:
            return chr(ord(esc[1]) & 0x1F)
        return _ANSI_SIMPLE.get(esc, esc)

    return _ANSI_C.sub(one, body)


def _first_problem(node: Node) -> Node | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing or child.type == "ERROR":
            found = _first_problem(child)
            if found is not None:
                return found
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@lru_cache(maxsize=1024)
def parse_command(source: str) -> ParsedCommand:
    """Describe a bash command line: its simple commands, substitutions, file writes, and what we cannot see."""
    control = _CONTROL.search(source)
    if control is not None:
        # bash splits words on space, tab and newline only; the grammar also on \r, \f, \v. Where the two
        # would read a command differently, neither reading can be trusted.
        return ParsedCommand(source, (), False, (), True, f"contains a control character ({control.group()!r})")
    data = source.encode("utf-8", "surrogatepass")
    root = _parser().parse(data).root_node
    walk = _Walk(data)
    try:
        walk.children(root)
    except RecursionError:
        # Substitutions nested hundreds deep: nothing a person would write; refuse to guess.
        commands, writes = tuple(walk.commands), tuple(walk.writes)
        return ParsedCommand(source, commands, True, writes, True, "nested too deeply to analyse", True, True)
    error = ""
    if root.has_error:
        problem = _first_problem(root)
        if problem is None:
            error = "does not parse as bash"
        else:
            line, column = problem.start_point.row + 1, problem.start_point.column + 1
            if problem.is_missing:
                error = f"incomplete: missing {problem.type!r} at line {line}, column {column}"
            else:
                snippet = walk.text(problem)[:30].replace("\n", "\\n")
                error = f"does not parse at line {line}, column {column}: {snippet!r}"
    return ParsedCommand(
        source=source,
        commands=tuple(walk.commands),
        has_substitution=walk.substitution,
        file_writes=tuple(walk.writes),
        opaque=walk.opaque,
        error=error,
        evaluates=walk.evaluates,
        hidden=walk.hidden,
    )


# ------------------------------------------------------------------------------- programs that run programs


def _basename(program: str) -> str:
    return program.rsplit("/", 1)[-1]


def _runs_hidden_code(argv: list[str] | tuple[str, ...]) -> bool:
    name = _basename(argv[0])
    if name in _OPAQUE_PROGRAMS:
        return True
    if name in _SHELLS:
        return _shell_runs_code(argv)
    if name == "env" and any(w.startswith(("-S", "--split-string")) for w in argv[1:]):
        return True  # env -S splits a string into a command line
    if name in ("mapfile", "readarray"):
        return any(w.startswith("-C") for w in argv[1:])  # -C runs a callback for each line
    code_options = _interpreter(name)
    if code_options is not None:
        # `python`, `python -`, `node < x.js`: the program reads its code from stdin (a pipe, a heredoc).
        if any(w in ("--version", "-V", "--help", "-h") for w in argv[1:]):
            return False
        operands = [w for w in argv[1:] if not w.startswith("-") or w == "-" or w in code_options]
        return not operands or operands[0] == "-"
    return False


def _shell_runs_code(argv: list[str] | tuple[str, ...]) -> bool:
    """A shell given code we cannot see: `-c CODE`, a script on stdin (`| sh`, `bash <<EOF`), `-s`, `-i`."""
    args = argv[1:]
    if _basename(argv[0]) == "busybox":
        if not args or _basename(args[0]) not in _SHELLS:
            return False
        args = args[1:]
    i = 0
    while i < len(args):
        word = args[i]
        if word in ("--", "-"):
            return i + 1 >= len(args) or word == "-"
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if word.startswith("--"):
            i += 1
            continue
        if word[:1] in "-+" and len(word) > 1:
            if any(flag in word[1:] for flag in "csi"):
                return True
            i += 1
            continue
        return False  # a script file: like running any other program
    return True  # no script: reads its code from stdin


class _Wrapper:
    # A plain class, not a dataclass: these tables are built at import, which must stay cheap.
    __slots__ = ("arg_options", "flags", "positional", "assignments")

    def __init__(self, arg_options: str, flags: str = "", positional: int = 0, assignments: bool = False) -> None:
        self.arg_options = frozenset(arg_options.split())  # options that take the next word as their value
        self.flags = frozenset(flags.split())  # options with no value; any other makes the wrapper unknown
        self.positional = positional  # operands before the command (`timeout 10 cmd`)
        self.assignments = assignments  # `env A=1 cmd`


_w = _Wrapper


# Programs whose operands are another command. Unknown options make the inner command unknown, and the
# prefix then covers only the exact command line.
_WRAPPERS: dict[str, _Wrapper] = {
    "env": _w("-u --unset -C --chdir", "-i --ignore-environment -0 --null -v --debug -", assignments=True),
    "sudo": _w("-u --user -g --group -h --host -p --prompt -C --close-from -D --chdir -r --role -t --type "
               "-U --other-user -T --command-timeout -R --chroot", "-E -H -n -S -k -K -A -b -P -s -i --"),
    "doas": _w("-u -C", "-n -s -L --"),
    "nohup": _w("", "--"),
    "nice": _w("-n --adjustment", "--"),
    "ionice": _w("-c --class -n --classdata -p --pid -P --pgid -u --uid", "-t --ignore --"),
    "timeout": _w("-s --signal -k --kill-after", "--preserve-status --foreground -v --verbose --", positional=1),
    "stdbuf": _w("-i --input -o --output -e --error", "--"),
    "time": _w("-f --format -o --output", "-p -a --append -v --verbose -q --quiet --portability --"),
    "command": _w("", "-p --"),
    "builtin": _w("", "--"),
    "exec": _w("-a", "-c -l --"),
    "setsid": _w("", "-c --ctty -f --fork -w --wait --"),
    "xargs": _w("-a --arg-file -d --delimiter -E -e --eof -I -L -l --max-lines -n --max-args -P --max-procs "
                "-s --max-chars --process-slot-var", "-0 --null -r --no-run-if-empty -t --verbose -p --interactive "
                "-x --exit -o --open-tty --show-limits -i --replace"),
}

_FIND_RUNS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _wrapped(argv: tuple[str, ...] | list[str]) -> tuple[int, bool] | None:
    """For a wrapper, (index where the inner command starts, whether the wrapper's options were understood)."""
    name = _basename(argv[0])
    spec = _WRAPPERS.get(name)
    if spec is None:
        return None
    if name == "command" and any(w in ("-v", "-V") for w in argv[1:]):
        return None  # `command -v x` looks a name up; it runs nothing
    i, positional = 1, spec.positional
    while i < len(argv):
        word = argv[i]
        if word == "--" and "--" in spec.flags:
            i += 1
            break
        if spec.assignments and "=" in word and not word.startswith("-"):
            i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            option = word.split("=", 1)[0]
            if option in spec.arg_options:
                i += 1 if "=" in word else 2
            elif word in spec.flags:
                i += 1
            elif option[:2] in spec.arg_options and not option.startswith("--"):
                i += 1  # value attached: `-n10`, `-oL`, `-I{}`
            elif name == "nice" and word[1:].isdigit():
                i += 1  # nice -10
            else:
                return i, False
            continue
        if positional:
            positional -= 1
            i += 1
            continue
        break
    return i, True


def _inner_argvs(words: tuple[str, ...] | list[str]) -> list[tuple[str, ...]]:
    """The argv of every command this one runs for us: behind wrappers (`sudo x`, `xargs x`) and `find -exec x`."""
    found: list[tuple[str, ...]] = []
    current = tuple(words)
    while current:
        name = _basename(current[0])
        if name == "find":
            i = 1
            while i < len(current):
                if current[i] in _FIND_RUNS:
                    end = i + 1
                    while end < len(current) and current[end] not in (";", "+"):
                        end += 1
                    found.append(current[i + 1 : end])
                    i = end
                i += 1
            break
        wrapped = _wrapped(current)
        if wrapped is None:
            break
        start, understood = wrapped
        if not understood:
            break
        current = current[start:]
        if current:
            found.append(current)
    return found


def inner_commands(cmd: SimpleCommand) -> tuple[tuple[str, ...], ...]:
    """The commands `cmd` runs on our behalf.

    `sudo rm x` → (("rm", "x"),); `find . -exec rm {} +` → (("rm", "{}"),). A deny rule for `rm` should also see these. Nested wrappers give one entry each (`sudo env rm` → both).
    """
    return tuple(_inner_argvs(cmd.words))


# ------------------------------------------------------------------------------------------------ prefix


class _Subcommands:
    __slots__ = ("arg_options", "runs")

    def __init__(self, arg_options: str, runs: str = "") -> None:
        self.arg_options = frozenset(arg_options.split())  # global options with a value (`git -C dir status`)
        self.runs = frozenset(runs.split())  # subcommands whose next word names what runs (`npm run build`)


_s = _Subcommands


# Programs with subcommands whose global options come first. The options seen stay in the prefix, so an
# approval of `git -c core.pager=cat log` does not cover `git push`.
_SUBCOMMAND_PROGRAMS: dict[str, _Subcommands] = {
    "git": _s("-C -c --git-dir --work-tree --namespace --config-env --super-prefix"),
    "npm": _s("--prefix -w --workspace", "run run-script exec x"),
    "pnpm": _s("-C --dir --filter -F", "run exec dlx"),
    "yarn": _s("--cwd", "run exec dlx"),
    "bun": _s("--cwd", "run x"),
    "npx": _s("-p --package", ""),
    "uv": _s("--directory --project", "run tool"),
    "uvx": _s("--from --with", ""),
    "poetry": _s("-C --directory -P --project", "run"),
    "pdm": _s("-p --project", "run"),
    "hatch": _s("-e --env", "run"),
    "pipx": _s("", "run"),
    "bundle": _s("", "exec"),
    "cargo": _s("-C --config --color -Z", "run"),
    "go": _s("-C", "run"),
    "docker": _s("-H --host -c --context --config -l --log-level", "run exec"),
    "kubectl": _s("-n --namespace --context --kubeconfig -s --server --cluster --user", "exec"),
    "make": _s("-C --directory -f --file --makefile -I --include-dir -o --old-file -W --what-if"),
}
# Interpreters: an option that carries code or a module name is part of the prefix, with its value.
_INTERPRETERS: dict[str, frozenset[str]] = {
    "python": frozenset({"-c", "-m"}),
    "node": frozenset({"-e", "--eval", "-p", "--print", "-r", "--require"}),
    "deno": frozenset({"eval"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e", "-r"}),
    "php": frozenset({"-r"}),
}
# These change the shell itself; their whole text is the prefix.
_EXACT_PREFIX = frozenset(
    {"export", "declare", "typeset", "local", "readonly", "unset", "set", "shopt", "ulimit", "umask"}
)


def _looks_like_subcommand(word: str) -> bool:
    return bool(word) and not word.startswith(("-", "+", ".", "~")) and "/" not in word and "=" not in word


def _interpreter(name: str) -> frozenset[str] | None:
    if name in _INTERPRETERS:
        return _INTERPRETERS[name]
    stem = re.sub(r"[\d.]+$", "", name)  # python3, python3.12, node18
    return _INTERPRETERS.get(stem)


def _prefix_words(words: tuple[str, ...]) -> list[str]:
    program = words[0]
    name = _basename(program)
    if name in _EXACT_PREFIX:
        return list(words)
    wrapped = _wrapped(words)
    if wrapped is not None:
        start, understood = wrapped
        if not understood:
            return list(words)
        inner = words[start:]
        return list(words[:start]) + (_prefix_words(inner) if inner else [])
    if name == "find":
        # find runs nothing unless told to; what it is told to run or delete is what was approved.
        kept = [program]
        for i, word in enumerate(words[1:], 1):
            if word in _FIND_RUNS and i + 1 < len(words):
                kept += [word, *(w for w in _prefix_words(words[i + 1 :]) if w != "{}")]
            elif word in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"):
                kept.append(word)
        return kept
    code_options = _interpreter(name)
    if code_options is not None:
        kept = [program]
        for i, word in enumerate(words[1:], 1):
            if word in code_options:
                return kept + list(words[i : i + 2])
            kept.append(word)
            if not word.startswith("-"):
                # the script, and its subcommand if any (`python manage.py migrate`)
                if i + 1 < len(words) and _looks_like_subcommand(words[i + 1]):
                    kept.append(words[i + 1])
                return kept
        return kept
    spec = _SUBCOMMAND_PROGRAMS.get(name)
    if spec is None:
        if len(words) > 1 and _looks_like_subcommand(words[1]):
            return [program, words[1]]
        return [program]
    kept = [program]
    i = 1
    while i < len(words) and words[i].startswith("-") and words[i] != "--":
        kept.append(words[i])
        if words[i] in spec.arg_options and i + 1 < len(words):
            kept.append(words[i + 1])
            i += 1
        i += 1
    if i < len(words) and _looks_like_subcommand(words[i]):
        kept.append(words[i])
        if words[i] in spec.runs and i + 1 < len(words):
            rest = words[i + 1 :]
            kept += _prefix_words(rest) if not rest[0].startswith("-") else [rest[0]]
    return kept


def command_prefix(cmd: SimpleCommand) -> str:
    """What "yes for this session" records: the program and its subcommand ("git status", "npm test", "pytest").

    The program stays as written (`/tmp/evil/git status` is not `git status`). Leading assignments stay in
    (`PATH=/tmp/x git status` is not `git status`). Wrappers include what they run (`sudo rm`, `xargs rm`,
    `timeout 10 pytest`); `find` includes what it runs or deletes (`find -exec rm`, `find -delete`);
    interpreters include code given inline (`python -c CODE`). Compare prefixes for equality.
    """
    if not cmd.words:
        return " ".join(cmd.assignments)
    return " ".join([*cmd.assignments, *_prefix_words(cmd.words)])
