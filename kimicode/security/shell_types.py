"""What a parsed bash command line is: its simple commands, their words and redirections, and what was not seen.

Invariants (kimicode/security/shell.py builds these; the policy and the read-only proof rely on them):
- `ParsedCommand.commands` holds every simple command in source order, those inside substitutions included.
- A word keeps its source text whenever it expands at run time (`$x`, a glob, braces, `~`); its `literal`
  flag is then False. Only a literal word is the value the program receives. `literal` has one flag per
  word (a command with no words has none).
- Whatever is not analysed is reported, never guessed: `opaque` (loops, functions, `eval`, a shell given
  code ...), `hidden` (commands exist that are not in `commands`), `error` (the text does not parse).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
