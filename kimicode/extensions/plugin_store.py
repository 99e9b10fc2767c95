"""Installing, enabling and removing plugins: the writing side of the record plugin_index.py reads.

Installing is the user's act of trust in a plugin, so it is made of data only: a folder is copied (its
``.git`` and symbolic links left out, so nothing outside the plugin comes along), a git URL is cloned
with kimicode's hardened git (no hooks, no submodules, no config-named programs: kimicode/vcs/githarden.py)
and its ``.git`` dropped. Nothing the plugin holds runs at install. A plugin is staged beside its final
place and renamed into it, so a failed install leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kimicode.extensions.plugin_index import PLUGINS_DIR, InstalledPlugin, index_path, installed_plugins
from kimicode.extensions.plugins import Manifest, PluginError, read_manifest
from kimicode.jsonfile import write_json_atomic

# Names under KIMICODE_HOME/plugins/ that are kimicode's own, never a plugin's folder.
RESERVED_NAMES = frozenset({"marketplaces", "plugins.json", "marketplaces.json"})


def plugins_root(home: Path) -> Path:
    return home / PLUGINS_DIR


def looks_like_git_url(source: str) -> bool:
    from kimicode.batch.tasks import is_url

    return is_url(source) or source.endswith(".git")


def write_index(home: Path, plugins: list[InstalledPlugin]) -> None:
    entries = [{"name": p.name, "root": str(p.root), "enabled": p.enabled, "source": p.source} for p in plugins]
    write_json_atomic(index_path(home), {"plugins": entries})


@contextlib.contextmanager
def staged(source: str, parent: Path) -> Iterator[Path]:
    """A copy of ``source`` (a folder or a git URL) in a temporary folder under ``parent``, removed after."""
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    copy = scratch / "copy"
    try:
        folder = Path(source).expanduser()
        if folder.is_dir():
            _copy_folder(folder, copy)
        elif looks_like_git_url(source):
            _clone(source, copy, scratch)
        else:
            raise PluginError(f"{source} is neither a folder nor a git URL")
        yield copy
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _copy_folder(folder: Path, copy: Path) -> None:
    def skipped(directory: str, names: list[str]) -> set[str]:
        return {name for name in names if name == ".git" or os.path.islink(os.path.join(directory, name))}

    try:
        shutil.copytree(folder, copy, ignore=skipped, symlinks=True)
    except (OSError, shutil.Error) as exc:
        raise PluginError(f"cannot copy {folder}: {' '.join(str(exc).split())[:300]}") from None


def _clone(url: str, copy: Path, cwd: Path) -> None:
    from kimicode.vcs.git import run_git

    # git allows file:// only when the user typed it on git's own command line; here the user did, on ours.
    own = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always"}
    run_git("clone", "--quiet", "--depth", "1", "--no-recurse-submodules", "--", url, str(copy), cwd=cwd,
            error=PluginError, timeout=300, env=own if url.startswith("file://") else None)
    shutil.rmtree(copy / ".git", ignore_errors=True)  # what is kept is the plugin, as data


def install(source: str, home: Path, record_source: str = "") -> tuple[InstalledPlugin, Manifest]:
    """Install the plugin at ``source`` (a folder or a git URL) into KIMICODE_HOME/plugins/NAME, enabled."""
    root_dir = plugins_root(home)
    with staged(source, root_dir) as copy:
        manifest = read_manifest(copy)
        if manifest.name in RESERVED_NAMES:
            raise PluginError(f"a plugin may not be named '{manifest.name}' (kimicode keeps its own files there)")
        target = root_dir / manifest.name
        if target.exists() or any(p.name == manifest.name for p in installed_plugins(home)):
            raise PluginError(
                f"a plugin named '{manifest.name}' is installed already: `kimicode plugin remove {manifest.name}` first"
            )
        os.replace(copy, target)
    where = record_source or (str(Path(source).expanduser().resolve()) if Path(source).expanduser().is_dir() else source)
    plugin = InstalledPlugin(manifest.name, target, True, where)
    write_index(home, [*installed_plugins(home), plugin])
    return plugin, manifest


def find(home: Path, name: str) -> InstalledPlugin:
    for plugin in installed_plugins(home):
        if plugin.name == name:
            return plugin
    known = ", ".join(p.name for p in installed_plugins(home)) or "none"
    raise PluginError(f"no plugin named '{name}' is installed (installed: {known})")


def set_enabled(home: Path, name: str, enabled: bool) -> InstalledPlugin:
    find(home, name)
    updated = [
        InstalledPlugin(p.name, p.root, enabled, p.source) if p.name == name else p for p in installed_plugins(home)
    ]
    write_index(home, updated)
    return find(home, name)


def remove(home: Path, name: str) -> InstalledPlugin:
    """Drop the plugin from the record, then delete its folder when it is kimicode's copy (under
    KIMICODE_HOME/plugins/): a record naming any other folder never makes kimicode delete it."""
    plugin = find(home, name)
    write_index(home, [p for p in installed_plugins(home) if p.name != name])
    root = plugins_root(home).resolve()
    folder = plugin.root.resolve() if plugin.root.exists() else plugin.root
    if folder.parent == root and not plugin.root.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    return plugin
