"""What MCP servers may ask of kimicode: the user, by elicitation (a question with typed fields), and the
roots (the folders kimicode works in).

The front end decides how a question is asked (``McpManager.asker``): the REPL asks field by field, ACP
asks the editor accept/decline, and a run with nobody to ask (headless) declines, saying so in one line,
unless ``-y`` was given and every field has a default, which is then the answer.

Invariants:
- One question at a time, whichever servers ask: answers never interleave on the screen.
- An accepted answer holds only the fields the server asked for, each of the type its schema gives.
- While a question waits for the user, the call that caused it does not time out (``asking``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Answer", "Asker", "Field", "Question", "ServerRequests", "ask_in_lines", "unattended_asker"]

Action = Literal["accept", "decline", "cancel"]


@dataclass
class Field:
    name: str
    kind: str  # "string", "number", "integer", "boolean", "array" (several of ``choices``)
    title: str = ""
    description: str = ""
    choices: list[str] = field(default_factory=list)
    default: Any = None
    required: bool = False

    def label(self) -> str:
        words = self.title or self.name
        return f"{words} ({self.description})" if self.description and self.description != words else words

    def parse(self, text: str) -> Any:
        """The value ``text`` stands for; ValueError (saying what is expected) when it stands for none."""
        text = text.strip()
        if self.kind == "boolean":
            if text.lower() in ("y", "yes", "true", "1"):
                return True
            if text.lower() in ("n", "no", "false", "0"):
                return False
            raise ValueError("answer y or n")
        if self.kind in ("number", "integer"):
            try:
                return int(text) if self.kind == "integer" else float(text)
            except ValueError:
                raise ValueError(f"expected {'a whole number' if self.kind == 'integer' else 'a number'}") from None
        if self.kind == "array":
            picked = [part.strip() for part in text.split(",") if part.strip()]
            wrong = [part for part in picked if self.choices and part not in self.choices]
            if wrong:
                raise ValueError(f"pick from: {', '.join(self.choices)}")
            return picked
        if self.choices and text not in self.choices:
            raise ValueError(f"pick one of: {', '.join(self.choices)}")
        return text


@dataclass
class Question:
    server: str
    message: str
    fields: list[Field] = field(default_factory=list)
    url: str = ""  # a URL-mode question: the user is asked to open this address
    call: tuple[str, str] = ("", "")  # (agent, call id) of the tool call the question came during, if known

    def defaults(self) -> dict[str, Any] | None:
        """Every field's default, or None when some field the server requires has none."""
        values = {f.name: f.default for f in self.fields if f.default is not None}
        if self.url or any(f.required and f.name not in values for f in self.fields):
            return None
        return values


@dataclass
class Answer:
    action: Action
    content: dict[str, Any] | None = None


Asker = Callable[[Question], Awaitable[Answer]]


def question_from(server: str, params: Any) -> Question:
    """The SDK's elicitation request as a Question."""
    url = str(getattr(params, "url", "") or "")
    schema = getattr(params, "requested_schema", None) or {}
    if not isinstance(schema, dict):
        schema = schema.model_dump(by_alias=True, exclude_none=True) if hasattr(schema, "model_dump") else {}
    required = set(schema.get("required") or [])
    fields: list[Field] = []
    for name, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        choices = spec.get("enum") or [option.get("const") for option in spec.get("oneOf") or [] if "const" in option]
        items: dict[str, Any] = spec["items"] if isinstance(spec.get("items"), dict) else {}
        if spec.get("type") == "array":
            choices = items.get("enum") or [o.get("const") for o in items.get("anyOf") or [] if "const" in o]
        fields.append(
            Field(
                name=str(name),
                kind=str(spec.get("type") or "string"),
                title=str(spec.get("title") or ""),
                description=str(spec.get("description") or ""),
                choices=[str(choice) for choice in choices or []],
                default=spec.get("default"),
                required=name in required,
            )
        )
    return Question(server=server, message=str(getattr(params, "message", "")), fields=fields, url=url)


def unattended_asker(report: Callable[[str], None], accept_defaults: bool) -> Asker:
    """For a run nobody watches: decline (in one line), or with ``accept_defaults`` take a question whose
    fields all have defaults."""

    async def ask(question: Question) -> Answer:
        values = question.defaults() if accept_defaults else None
        if values is not None:
            report(f"MCP server '{question.server}' asked \"{question.message}\": answered with its defaults (-y)")
            return Answer("accept", values)
        why = "run with -y to answer with the defaults" if question.defaults() is not None else "it needs your answers"
        report(f"MCP server '{question.server}' asked \"{question.message}\": declined, nobody can answer here ({why})")
        return Answer("decline")

    return ask


async def ask_in_lines(question: Question, say: Callable[[str], None], ask_line: Callable[[str], Awaitable[str]]) -> Answer:
    """Ask ``question`` one line at a time (the REPL): answer it or not, then each field."""
    say(f"? MCP server '{question.server}' asks: {question.message}")
    if question.url:
        say(f"  it wants you to open: {question.url}")
    try:
        choice = (await ask_line("  [y] answer  [n] decline  [c] cancel › ")).strip().lower()
        if choice[:1] != "y":
            return Answer("cancel" if choice[:1] == "c" else "decline")
        values: dict[str, Any] = {}
        for item in question.fields:
            value = await _ask_field(item, say, ask_line)
            if value is not None:
                values[item.name] = value
    except (EOFError, KeyboardInterrupt):
        return Answer("cancel")
    return Answer("accept", values)


async def _ask_field(item: Field, say: Callable[[str], None], ask_line: Callable[[str], Awaitable[str]]) -> Any:
    hint = f" [{', '.join(item.choices)}]" if item.choices else (" [y/n]" if item.kind == "boolean" else "")
    default = f" (Enter: {item.default})" if item.default is not None else ""
    while True:
        text = await ask_line(f"  {item.label()}{hint}{default} › ")
        if not text.strip():
            if item.default is not None:
                return item.default
            if not item.required:
                return None
            say("  an answer is needed")
            continue
        try:
            return item.parse(text)
        except ValueError as exc:
            say(f"  {exc}")


async def _decline(question: Question) -> Answer:
    return Answer("decline")


class ServerRequests:
    """Answers the requests servers send kimicode: elicitation (through ``asker``) and roots."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self.asker: Asker = _decline
        self.asking = 0  # questions waiting for the user now
        self.asked = 0  # questions asked so far (a call that asked one gets more time)
        self._one_at_a_time = asyncio.Lock()
        self._calls: dict[str, list[tuple[str, str]]] = {}  # server -> (agent, call id) of its running calls

    @contextlib.contextmanager
    def running(self, server: str, call: tuple[str, str]) -> Iterator[None]:
        """While a tool call of ``server`` runs: a question the server asks meanwhile belongs to it."""
        calls = self._calls.setdefault(server, [])
        calls.append(call)
        try:
            yield
        finally:
            calls.remove(call)

    def callbacks(self, server: str) -> dict[str, Any]:
        """The ``ClientSession`` callbacks for server ``server`` (declaring them declares the capabilities)."""

        async def elicit(context: Any, params: Any) -> Any:
            from mcp_types import ElicitResult

            question = question_from(server, params)
            if self._calls.get(server):
                question.call = self._calls[server][-1]
            answer = await self.ask(question)
            return ElicitResult(action=answer.action, content=answer.content if answer.action == "accept" else None)

        async def list_roots(context: Any) -> Any:
            from mcp_types import ListRootsResult, Root

            return ListRootsResult(roots=[Root(uri=path.resolve().as_uri(), name=path.name) for path in self.roots])  # type: ignore[arg-type]

        return {"elicitation_callback": elicit, "list_roots_callback": list_roots}

    async def ask(self, question: Question) -> Answer:
        self.asked += 1
        self.asking += 1
        try:
            async with self._one_at_a_time:
                return await self.asker(question)
        finally:
            self.asking -= 1
