"""Reading JSON that someone else wrote (the model's tool arguments, a repository's config files, a client's
messages, a session's lines) where nesting deeper than the parser's stack is one more way to be bad JSON.

``json.loads`` raises RecursionError for text nested past the interpreter's recursion limit (a few hundred
kilobytes of ``[`` do it); callers that catch ``json.JSONDecodeError`` or ``ValueError`` for bad input would
let it escape as a traceback. ``loads`` raises a ``json.JSONDecodeError`` for it instead, so every such
caller says what is wrong in its own words.
"""

from __future__ import annotations

import json
from typing import Any

NESTED_TOO_DEEPLY = "nested too deeply"


def loads(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        shown = text if isinstance(text, str) else "(bytes)"
        raise json.JSONDecodeError(NESTED_TOO_DEEPLY, shown, 0) from None
