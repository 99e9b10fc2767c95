"""The GitHub Action's step (action.yml): run `kimicode -p` on the prompt with --output-format json, then
hand the result and the working tree's patch to the workflow as step outputs, and comment on the pull
request when asked.

Everything comes from the environment the runner sets (INPUT_*, GITHUB_*), so the script runs the same on a
laptop: ``KIMICODE_COMMAND`` overrides how kimicode is started (default ``kimicode``). The exit code is
kimicode's, after the outputs are written, so a failed run still leaves its result for later steps.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

COMMENT_LIMIT = 60000  # GitHub refuses comments over 65,536 characters


def run_kimicode(prompt: str, args: str) -> tuple[int, dict[str, object]]:
    command = shlex.split(os.environ.get("KIMICODE_COMMAND", "kimicode"))
    argv = [*command, "-p", prompt, "--output-format", "json", *shlex.split(args)]
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    if not isinstance(result, dict) or result.get("type") != "result":
        result = {"type": "result", "is_error": True, "result": "kimicode printed no result"}
    return done.returncode, result


def working_tree_patch() -> str:
    """The tracked files' changes and the new (untracked, not ignored) files, as one unified diff."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False)

    if git("rev-parse", "--is-inside-work-tree").returncode != 0:
        return ""
    patch = git("diff", "--no-color", "--no-ext-diff", "HEAD").stdout
    for name in git("ls-files", "--others", "--exclude-standard", "-z").stdout.split("\0"):
        if name:
            patch += git("diff", "--no-color", "--no-index", "--", "/dev/null", name).stdout
    return patch


def write_output(name: str, value: str) -> None:
    """One step output, in the multi-line form with a delimiter the value cannot contain."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        print(f"{name}:\n{value}")
        return
    delimiter = f"kimicode_{secrets.token_hex(16)}"
    while delimiter in value:
        delimiter = f"kimicode_{secrets.token_hex(16)}"
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def pull_request_number() -> int | None:
    event = os.environ.get("GITHUB_EVENT_PATH")
    if not event:
        return None
    try:
        data = json.loads(Path(event).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    number = (data.get("pull_request") or {}).get("number") or (data.get("issue") or {}).get("number")
    return number if isinstance(number, int) else None


def comment(body: str) -> None:
    number = pull_request_number()
    repository, token = os.environ.get("GITHUB_REPOSITORY"), os.environ.get("GITHUB_TOKEN")
    if number is None or not repository or not token:
        print("kimicode action: no pull request (or token) to comment on; skipped", file=sys.stderr)
        return
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    request = urllib.request.Request(
        f"{api}/repos/{repository}/issues/{number}/comments",
        data=json.dumps({"body": body[:COMMENT_LIMIT]}).encode(),
        headers={"authorization": f"Bearer {token}", "accept": "application/vnd.github+json", "content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except OSError as exc:
        print(f"kimicode action: could not comment on the pull request: {exc}", file=sys.stderr)


def comment_body(result: dict[str, object], patch: str) -> str:
    files = sorted({line[6:] for line in patch.splitlines() if line.startswith("+++ b/")})
    changed = "\n".join(f"- `{name}`" for name in files) or "_no files changed_"
    status = "failed" if result.get("is_error") else "done"
    return f"**kimicode** {status}\n\n{result.get('result', '')}\n\n**Files changed**\n{changed}\n"


def main() -> int:
    prompt = os.environ.get("INPUT_PROMPT", "").strip()
    if not prompt:
        print("kimicode action: the prompt input is empty", file=sys.stderr)
        return 2
    code, result = run_kimicode(prompt, os.environ.get("INPUT_ARGS", ""))
    patch = working_tree_patch()
    write_output("result", str(result.get("result", "")))
    write_output("patch", patch)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(comment_body(result, patch))
    if os.environ.get("INPUT_COMMENT", "").strip().lower() == "true":
        comment(comment_body(result, patch))
    return code


if __name__ == "__main__":
    sys.exit(main())
