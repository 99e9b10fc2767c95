"""Plugin marketplaces in Claude Code's format: a folder or git repository holding
``.claude-plugin/marketplace.json`` (or ``.kimicode-plugin/marketplace.json``) with ``name`` and
``plugins: [{name, source, description}]``.

``kimicode plugin marketplace add PATH|URL`` keeps a copy under KIMICODE_HOME/plugins/marketplaces/NAME
(recorded in ``marketplaces.json``); ``kimicode plugin install PLUGIN@MARKETPLACE`` installs one of its
plugins. A plugin's ``source`` is a path inside the marketplace (``./plugins/x``), a git URL, or an object
``{"source": "github", "repo": "owner/name"}`` / ``{"source": "url" | "git", "url": ...}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kimicode.extensions.plugin_index import InstalledPlugin
from kimicode.extensions.plugin_store import install, looks_like_git_url, plugins_root, staged
from kimicode.extensions.plugins import MANIFEST_DIRS, MARKETPLACE_FILE, VALID_NAME, Manifest, PluginError
from kimicode.jsonfile import write_json_atomic

MARKETPLACES_FILE = "marketplaces.json"


@dataclass(frozen=True)
class Listing:
    name: str
    source: Any
    description: str = ""


def _record_path(home: Path) -> Path:
    return plugins_root(home) / MARKETPLACES_FILE


def marketplaces(home: Path) -> dict[str, dict[str, str]]:
    """Added marketplaces by name: {"root": folder, "source": where it came from}."""
    try:
        table = json.loads(_record_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in table.items() if isinstance(v, dict)} if isinstance(table, dict) else {}


def read_marketplace(root: Path) -> tuple[str, list[Listing]]:
    for folder in MANIFEST_DIRS:
        path = root / folder / MARKETPLACE_FILE
        if path.is_file():
            break
    else:
        raise PluginError(f"{root} is not a marketplace: no .claude-plugin/{MARKETPLACE_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PluginError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not VALID_NAME.match(name):
        raise PluginError(f"{path}: 'name' must be letters, digits, '.', '_' or '-' (got {name!r})")
    listings = [
        Listing(entry["name"], entry.get("source"), str(entry.get("description") or ""))
        for entry in data.get("plugins") or []
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    ]
    return name, listings


def add_marketplace(home: Path, source: str) -> tuple[str, list[Listing]]:
    base = plugins_root(home) / "marketplaces"
    with staged(source, base) as copy:
        name, listings = read_marketplace(copy)
        target = base / name
        if target.exists():
            raise PluginError(f"a marketplace named '{name}' is added already")
        os.replace(copy, target)
    where = str(Path(source).expanduser().resolve()) if Path(source).expanduser().is_dir() else source
    write_json_atomic(_record_path(home), {**marketplaces(home), name: {"root": str(target), "source": where}})
    return name, listings


def install_listed(home: Path, plugin: str, market: str) -> tuple[InstalledPlugin, Manifest]:
    """Install ``plugin`` as marketplace ``market`` lists it."""
    known = marketplaces(home)
    if market not in known:
        names = ", ".join(known) or "none"
        raise PluginError(f"no marketplace named '{market}' (added: {names}); add it with `kimicode plugin marketplace add`")
    root = Path(known[market]["root"])
    _name, listings = read_marketplace(root)
    listing = next((item for item in listings if item.name == plugin), None)
    if listing is None:
        raise PluginError(f"marketplace '{market}' lists no plugin '{plugin}' (it lists: {', '.join(i.name for i in listings) or 'none'})")
    return install(_source_of(listing, root), home, record_source=f"{plugin}@{market}")


def _source_of(listing: Listing, root: Path) -> str:
    source = listing.source
    if isinstance(source, dict):
        kind = source.get("source")
        if kind == "github" and isinstance(source.get("repo"), str):
            return f"https://github.com/{source['repo']}.git"
        if kind in ("url", "git") and isinstance(source.get("url"), str):
            return str(source["url"])
        raise PluginError(f"plugin '{listing.name}': source {source!r} is not one kimicode installs")
    if not isinstance(source, str) or not source:
        raise PluginError(f"plugin '{listing.name}' has no source")
    if looks_like_git_url(source):
        return source
    folder = (root / source).resolve()
    if not folder.is_relative_to(root.resolve()):  # a listing never reaches outside its marketplace
        raise PluginError(f"plugin '{listing.name}': source {source} is outside the marketplace")
    return str(folder)
