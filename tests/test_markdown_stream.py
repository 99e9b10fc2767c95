from kimicode.frontends.repl.markdown_stream import MarkdownLines


def styles_of(text) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {text.plain[span.start : span.end]: str(span.style) for span in text.spans}


def test_lines_appear_only_when_complete_and_markup_is_styled() -> None:
    md = MarkdownLines()
    assert md.feed("Fixed: **add(2, 3)** now") == []
    [line] = md.feed(" returns `5`.\n- changed ")
    assert line.plain == "Fixed: add(2, 3) now returns 5."
    assert styles_of(line) == {"add(2, 3)": "bold", "5": "cyan"}
    [bullet] = md.flush()
    assert bullet.plain == "• changed "


def test_code_fences_keep_their_content_verbatim() -> None:
    md = MarkdownLines()
    lines = md.feed("```python\nx = **y**\n```\n# Title\n")
    assert [line.plain for line in lines] == ["  ╭ python", "  │ x = **y**", "  ╰", "Title"]
    assert "bold" in str(lines[3].style)


def test_state_resets_between_replies() -> None:
    md = MarkdownLines()
    md.feed("```\nunterminated")
    md.flush()
    [line] = md.feed("*plain* again\n")
    assert line.plain == "plain again" and styles_of(line) == {"plain": "italic"}


def test_fenced_code_with_a_language_is_coloured_line_by_line() -> None:
    md = MarkdownLines()
    fence, line = md.feed("```python\ndef add(a, b):\n")
    assert line.plain == "  │ def add(a, b):"
    coloured = {line.plain[span.start : span.end] for span in line.spans if getattr(span.style, "color", None)}
    assert "def" in coloured  # the keyword has a colour of its own, before the block ends
    [plain] = MarkdownLines().feed("```\ndef add(a, b):\n")[1:]
    assert str(plain.style) == "green"  # no language named: one colour for the block


def test_screen_cut_keeps_words_whole() -> None:
    from kimicode.frontends.repl.markdown_stream import screen_cut

    assert screen_cut("alpha bravo charlie", 12) == 11  # "alpha bravo" fits; charlie goes to the next line
    assert screen_cut("alpha bravo", 11) == 11
    assert screen_cut("abcdefghij", 4) == 4  # a word longer than the screen is the only one cut
    assert screen_cut("漢字 漢字漢字", 6) == 2  # wide characters take two cells each


def test_a_streamed_line_is_committed_at_the_screen_width_and_its_rest_is_no_bullet() -> None:
    import io

    from rich.console import Console

    from kimicode.agent import events as ev
    from kimicode.frontends.repl.render import Renderer

    out = io.StringIO()
    renderer = Renderer(Console(file=out, width=30, force_terminal=False))
    renderer.hold_partial = True
    renderer.event(ev.TextDelta("- a bullet whose text is long enough to wrap and then "))
    assert out.getvalue() == "• a bullet whose text is long\n"  # one full screen line, cut at a space
    assert renderer.partial() == ("text", "enough to wrap and then ")
    renderer.event(ev.TextDelta("- 3 = 2 is not a bullet\n"))
    renderer.close_stream()
    assert out.getvalue().splitlines()[1:] == ["enough to wrap and then - 3 =", "2 is not a bullet"]
