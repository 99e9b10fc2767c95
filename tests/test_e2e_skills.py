"""End-to-end: skills from the user's home and the project reach the first request's system prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply


def write_skill(root: Path, folder: str, frontmatter: str, body: str = "Steps.\n") -> Path:
    path = root / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{frontmatter.strip()}\n---\n{body}", encoding="utf-8")
    return path


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\n")
    user_home = tmp_path / "userhome"  # clirun points HOME here
    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)
    return home, user_home, project


def system_prompt(fake: FakeLLM) -> str:
    first = fake.chat_requests[0].messages[0]
    assert first["role"] == "system"
    return first["content"]


def test_user_and_project_skills_in_the_system_prompt(fake_llm: FakeLLM, setup: tuple[Path, Path, Path]) -> None:
    home, user_home, project = setup
    user_skills = user_home / ".claude" / "skills"
    pdf = write_skill(user_skills, "pdf", "name: pdf-tools\ndescription: Fill and merge PDF forms: use for any .pdf work")
    write_skill(user_skills, "deploy", "name: deploy\ndescription: The user's old deploy steps")
    broken = write_skill(user_skills, "broken", "name: broken")  # no description: invalid
    project_skills = project / ".agents" / "skills"
    deploy = write_skill(project_skills, "deploy", "name: deploy\ndescription: Deploy this project with make ship")

    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "hi"], home=home, cwd=project, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    prompt = system_prompt(fake_llm)
    assert "## Skills" in prompt and "`view`" in prompt
    assert f"In {pdf.parent.parent}/ (each NAME/SKILL.md):\n" in prompt
    assert "- pdf-tools — Fill and merge PDF forms: use for any .pdf work (pdf/SKILL.md)" in prompt
    # the project's deploy shadows the user's
    assert f"In {deploy.parent.parent}/ (each NAME/SKILL.md):\n- deploy — Deploy this project with make ship" in prompt
    assert "old deploy steps" not in prompt
    assert "- broken" not in prompt
    skipped = [line for line in proc.stderr.splitlines() if "skipped invalid skill" in line]
    assert len(skipped) == 1 and str(broken) in skipped[0] and "description" in skipped[0]


def test_instant_mode_leaves_the_catalog_out(fake_llm: FakeLLM, setup: tuple[Path, Path, Path]) -> None:
    home, user_home, project = setup
    write_skill(user_home / ".claude" / "skills", "pdf", "name: pdf-tools\ndescription: PDF work")
    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "hi", "--mode", "instant"], home=home, cwd=project, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "pdf-tools" not in system_prompt(fake_llm)


def test_many_skills_keep_the_catalog_bounded(fake_llm: FakeLLM, setup: tuple[Path, Path, Path]) -> None:
    home, user_home, project = setup
    for index in range(200):
        write_skill(project / ".kimicode" / "skills", f"s{index:03d}", f"name: skill-{index:03d}\ndescription: {'x' * 250}")
    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "hi"], home=home, cwd=project, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    section = system_prompt(fake_llm).split("## Skills", 1)[1]
    assert "skill-000" in section and "skill-199" not in section
    assert "more skills not listed" in section
    assert len(section) < 3200
