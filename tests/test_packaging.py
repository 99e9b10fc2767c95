"""The package is what it says: a wheel installed into a fresh venv has the built-in skills and runs a task,
and the floor pins CI tests stay the floors pyproject.toml declares."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.clirun import REPO
from tests.fake_llm import FakeLLM, Reply, ToolCall

BUILTIN_SKILLS = {"docx", "frontend-design", "pdf", "pptx", "video-to-code", "visual-debugging", "xlsx"}


# The tests that need the venv run on one xdist worker, so that it is built once.
pytestmark = pytest.mark.xdist_group("wheel_venv")


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (nothing from the system's site-packages) with kimicode installed from a freshly built
    wheel, its dependencies from the index pip is configured with: what a user gets from ``pip install``."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"  # build from a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", "tests", "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(source)],
                   check=True, capture_output=True, text=True)
    wheel = next((root / "dist").glob("kimicode-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                             env=env, capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stdout + install.stderr
    # Another distribution's top-level "skills" folder in site-packages must not pass for kimicode's own.
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "skills" / "intruder").mkdir(parents=True)
    (site / "skills" / "intruder" / "SKILL.md").write_text("---\nname: intruder\ndescription: not kimicode's\n---\n")
    return venv


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIMI", "MOONSHOT", "PYTHON"))}
    env.update(KIMICODE_HOME=str(home), HOME=str(home.parent / "userhome"), NO_COLOR="1", KIMI_API_KEY="test-key", **extra)
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def test_the_wheel_has_the_built_in_skills(wheel_venv: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    python = str(wheel_venv / "bin" / "python")
    where = subprocess.run([python, "-c", "import kimicode; print(kimicode.__file__)"], cwd=workspace,
                           env=_env(tmp_path / "home"), capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(wheel_venv)), where  # the installed copy, not this checkout
    proc = subprocess.run([str(wheel_venv / "bin" / "kimicode"), "skills", "list"], cwd=workspace,
                          env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if "builtin" in line}
    assert listed == BUILTIN_SKILLS, proc.stdout
    assert "intruder" not in proc.stdout


def test_the_wheel_runs_a_headless_task(wheel_venv: Path, fake_llm: FakeLLM, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("draft\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("strreplace", {"path": "notes.txt", "old_str": "draft", "new_str": "final"})]),
        Reply(content="Done.", tool_calls=[ToolCall("submit", {"summary": "notes are final"})]),
    )
    proc = subprocess.run([str(wheel_venv / "bin" / "kimicode"), "-p", "-y", "--output-format", "json", "finish the notes"],
                          cwd=workspace, env=_env(tmp_path / "home", KIMI_BASE_URL=fake_llm.base_url),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"].startswith("notes are final")
    assert (workspace / "notes.txt").read_text() == "final\n"
    skills_prompt = fake_llm.requests[0].body["messages"][0]["content"]
    assert "visual-debugging" in skills_prompt and str(wheel_venv) in skills_prompt  # SKILL.md paths in the venv


def _imports_of_kimicode() -> tuple[list[str], list[str]]:
    """kimicode's modules (the built-in skills are data), and every other module they import at any depth
    of the code (lazy imports inside functions too), but the standard library and the optional extras'."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = {_name(req).replace("-", "_") for extra, reqs in project["optional-dependencies"].items()
                if extra != "test" for req in reqs}
    modules, imported = [], set()
    for path in sorted((REPO / "kimicode").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if "skills" in parts:
            continue
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    third_party = sorted(name for name in imported if name.split(".")[0] not in
                         {*sys.stdlib_module_names, "kimicode", *optional})
    return modules, third_party


IMPORT_ALL = """
import importlib, importlib.metadata, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=-2)
print(json.dumps({"failed": failed, "dists": importlib.metadata.packages_distributions()}))
"""


def test_every_module_imports_in_a_fresh_venv_from_the_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    # What pip installs for the wheel is all kimicode needs: each of its modules imports, and so does each
    # module its code imports later (trafilatura needs lxml.html.clean, which pip before 24 leaves out).
    modules, third_party = _imports_of_kimicode()
    assert "kimicode.vision.video_av" in modules and "trafilatura" in third_party and "av" in third_party
    proc = subprocess.run([str(wheel_venv / "bin" / "python"), "-c", IMPORT_ALL, json.dumps(modules + third_party)],
                          cwd=tmp_path, env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["failed"], "\n".join(f"{name}: {why}" for name, why in report["failed"].items())
    # ... and what the code imports is declared, not there by luck as another package's dependency.
    declared = {_name(req) for req in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    for top in sorted({name.split(".")[0] for name in third_party}):
        dists = {_name(dist) for dist in report["dists"].get(top, [])}
        assert dists & declared, f"{top} comes from {dists or 'nowhere'}, which pyproject.toml does not declare"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_floor_pins_are_the_declared_floors() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for line in (REPO / ".ci" / "floors.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version.strip()
    for requirement in declared:
        from packaging.version import Version

        floor = requirement.split(">=", 1)[1].split(",")[0].strip()
        pinned = pins.get(_name(requirement))
        assert pinned is not None and Version(pinned) == Version(floor), f"{requirement}: .ci/floors.txt pins {pinned}"
