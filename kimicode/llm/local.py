"""OpenAI-compatible servers on this machine: Ollama, LM Studio, llama.cpp, vLLM, SGLang on their usual
ports, each asked ``GET /v1/models`` with a short timeout, all at once.

``KIMICODE_LOCAL_PORTS`` replaces the list (``8080`` or ``llama.cpp=8080``, comma-separated), for a server
on another port, and for tests that must not depend on what happens to listen on the usual ones.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from kimicode.config import Config, ConfigError
from kimicode.llm.models import ModelInfo, ModelsError, fetch_models, server_of

LOCAL_PORTS_ENV = "KIMICODE_LOCAL_PORTS"
KNOWN_SERVERS: tuple[tuple[str, int], ...] = (
    ("Ollama", 11434),
    ("LM Studio", 1234),
    ("llama.cpp", 8080),
    ("vLLM", 8000),
    ("SGLang", 30000),
)
PROBE_TIMEOUT_S = 0.8
_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "llama.cpp": "llama.cpp"}


@dataclass
class LocalServer:
    name: str
    base_url: str
    models: list[ModelInfo] = field(default_factory=list)

    def describe(self) -> str:
        count = len(self.models)
        listed = ", ".join(m.id for m in self.models[:3]) + (" …" if count > 3 else "")
        return f"{self.name} at {self.base_url} ({count} model{'s' if count != 1 else ''}: {listed})"


def candidate_ports(env: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """(name, port) to probe: the known servers, or what KIMICODE_LOCAL_PORTS says."""
    value = (os.environ if env is None else env).get(LOCAL_PORTS_ENV, "").strip()
    if not value:
        return list(KNOWN_SERVERS)
    by_port = {port: name for name, port in KNOWN_SERVERS}
    found: list[tuple[str, int]] = []
    for item in value.split(","):
        name, _, port_text = item.strip().rpartition("=")
        if port_text.isdigit() and 0 < int(port_text) < 65536:
            port = int(port_text)
            found.append((name or by_port.get(port, f"server on port {port}"), port))
    return found


async def _probe(name: str, port: int, timeout: float) -> LocalServer | None:
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        models = await asyncio.to_thread(fetch_models, base_url, "", timeout)
    except ModelsError:
        return None
    server = server_of(models)
    return LocalServer(_NAMES.get(server, name), base_url, models)


async def discover(timeout: float = PROBE_TIMEOUT_S, env: dict[str, str] | None = None) -> list[LocalServer]:
    """The local servers that answer, in the order of the port list; a server with no models counts too
    (LM Studio answers an empty list until a model is loaded)."""
    found = await asyncio.gather(*(_probe(name, port, timeout) for name, port in candidate_ports(env)))
    return [server for server in found if server is not None]


def pick(servers: list[LocalServer], model: str | None) -> tuple[LocalServer, str] | None:
    """The server (and model) a run with --local uses: the first that serves ``model`` when one is
    named, else the first server's first model."""
    from kimicode.llm.models import find_model

    if model:
        for server in servers:
            listed = find_model(server.models, model)
            if listed is not None:
                return server, listed.id
        return None
    for server in servers:
        if server.models:
            return server, server.models[0].id
    return None


def use_local(config: Config, model: str | None = None) -> LocalServer:
    """Point ``config`` at a local server (``--local``): the first found that serves ``model`` (or any
    model). The configured key stays home: a server found by probing ports is not where it was meant to
    go. ConfigError (one line) when there is none."""
    servers = asyncio.run(discover())
    chosen = pick(servers, model)
    if chosen is None:
        ports = ", ".join(str(port) for _, port in candidate_ports())
        if servers and model:
            seen = "; ".join(server.describe() for server in servers)
            raise ConfigError(f"no local server serves model '{model}' ({seen}); drop -m, or load that model")
        if servers:
            raise ConfigError(f"the local servers found list no models ({servers[0].describe()}); load a model first")
        raise ConfigError(
            f"no OpenAI-compatible server answered on this machine (ports {ports}); start one (Ollama, "
            f"LM Studio, llama.cpp, vLLM, SGLang), or give --base-url, or set {LOCAL_PORTS_ENV}"
        )
    server, model_id = chosen
    config.base_url, config.model, config.api_key = server.base_url, model_id, ""
    return server
