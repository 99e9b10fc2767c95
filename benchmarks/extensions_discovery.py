"""What finding the user's custom commands, plugins and global instructions costs at start-up.

The REPL's start-up reads them as it builds its commands and its one extensions line (kimicode.frontends.
repl.custom_commands): the command folders twice, the plugin record once, the global instruction files once
(for the system prompt). Timed here as one "start-up" sample, in three layouts interleaved per round: none
of the folders exist (most users), 30 commands spread over the folders of four agents, and 300. Also the
first import of the modules involved, in a fresh interpreter (what a first start pays once).

Target: ≤ 10 ms with none.

Run: python benchmarks/extensions_discovery.py [--runs 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import check_runs, interleaved, machine_line, target_line  # noqa: E402
from kimicode.extensions.commands import find_commands  # noqa: E402
from kimicode.extensions.memory import global_instructions  # noqa: E402
from kimicode.extensions.summary import extension_counts  # noqa: E402

TARGET_MS = 10.0
FOLDERS = (".kimicode/commands", ".claude/commands", ".gemini/commands")
USER_FOLDERS = (".claude/commands", ".codex/prompts", ".gemini/commands")


def layout(root: Path, count: int) -> tuple[Path, Path, Path]:
    ws, kimihome, userhome = root / "ws", root / "kimihome", root / "userhome"
    for folder in (ws, kimihome, userhome):
        folder.mkdir(parents=True)
    places = [ws / f for f in FOLDERS] + [userhome / f for f in USER_FOLDERS] + [kimihome / "commands"]
    for index in range(count):
        folder = places[index % len(places)] / ("team" if index % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        if "gemini" in str(folder):
            (folder / f"c{index}.toml").write_text(f'description = "c{index}"\nprompt = "Do {{{{args}}}} {index}"\n')
        else:
            (folder / f"c{index}.md").write_text(f"---\ndescription: command {index}\n---\nDo $ARGUMENTS {index}\n")
    return ws, kimihome, userhome


def startup(ws: Path, kimihome: Path, userhome: Path) -> float:
    started = time.perf_counter()
    catalog = find_commands(ws, kimihome, userhome)  # the REPL's commands
    extension_counts(ws, kimihome, userhome, counts={"commands": len(catalog)})  # the plugins, for the line
    find_commands(ws, kimihome, userhome)  # the names a built-in keeps, for the line
    global_instructions(kimihome, userhome)  # the system prompt
    return time.perf_counter() - started


def first_import_ms() -> float:
    code = (
        "import time, kimicode.config; t = time.perf_counter(); import kimicode.extensions.commands, "
        "kimicode.extensions.summary, kimicode.extensions.memory; print((time.perf_counter() - t) * 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = check_runs(parser.parse_args().runs)
    with tempfile.TemporaryDirectory() as tmp:
        places = {name: layout(Path(tmp) / name, count) for name, count in (("none", 0), ("30", 30), ("300", 300))}
        got = interleaved({name: (lambda p=p: startup(*p)) for name, p in places.items()}, runs)
    for name, stats in got.items():
        print(f"start-up discovery, {name:>4} commands: {stats.show(1000, 2, 'ms')}")
    imports = sorted(first_import_ms() for _ in range(3))
    print(f"first import of the extension modules (fresh interpreter): {imports[1]:.2f} ms (min–max {imports[0]:.2f}–{imports[2]:.2f}, n=3)")
    print(target_line("start-up discovery with none", got["none"].median * 1000, TARGET_MS, "ms", digits=2))
    print(machine_line())


if __name__ == "__main__":
    main()
