import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fake_llm import FakeLLM
from tests.replpty import Repl


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """KIMICODE_HOME for the test (created by kimicode when it writes there); modules may define their own."""
    return tmp_path / "home"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started scripted model server on 127.0.0.1; closed after the test."""
    with FakeLLM() as server:
        yield server


@pytest.fixture
def spawn(home: Path, workspace: Path, fake_llm: FakeLLM) -> Iterator[Callable[..., Repl]]:
    """Start the interactive kimicode in a pty (uses the module's ``home`` and ``workspace`` fixtures).

    Each started REPL keeps its raw terminal bytes in ``repl.raw``; all are closed after the test.
    """
    started: list[Repl] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Repl:
        repl = Repl(home, workspace, fake_llm.base_url, *args, env=env)
        repl.raw = io.StringIO()  # type: ignore[attr-defined]
        repl.child.logfile_read = repl.raw  # type: ignore[attr-defined]
        started.append(repl)
        return repl

    yield start
    for repl in started:
        repl.close()
