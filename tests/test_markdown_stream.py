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
