from collections.abc import Iterator

import pytest

from tests.fake_llm import FakeLLM


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started scripted model server on 127.0.0.1; closed after the test."""
    with FakeLLM() as server:
        yield server
