import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clirun import write_home_config
from tests.fake_llm import FakeLLM
from tests.replpty import Repl
from tests.sandboxing import check_needs


QUICK_RETRIES = "retry_base_delay = 0.01\nmax_retries = 1\n"


@pytest.fixture
def home(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """KIMICODE_HOME for the test (created by kimicode when it writes there); modules may define their own.

    Tests marked ``quick_retries`` get a config.toml whose retries are quick, so that a faulty scripted
    reply fails in milliseconds rather than after the default backoff.
    """
    home = tmp_path / "home"
    if request.node.get_closest_marker("quick_retries") is not None:
        write_home_config(home, QUICK_RETRIES)
    return home


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


def pytest_runtest_setup(item: pytest.Item) -> None:
    check_needs(item)  # a missing system dependency skips the test, or in CI fails it
