"""Whether a task's checkout carries the settings the user trusted in its repository.

Trust is keyed by the repository's folder and tied to a fingerprint of its settings files as they are
there (kimicode/security/trust.py). A task checks out another ref, which may add or change any of them
(an MCP server on a branch): the task gets ``--trust`` only when every file the fingerprint covers has the
same bytes (or is absent in both) at the same place relative to each root.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def settings_digest(root: Path) -> str:
    """sha256 over the settings files trust fingerprints, named relative to ``root``."""
    from kimicode.security.trust import fingerprinted_files

    root = root.resolve()
    digest = hashlib.sha256()
    for path in fingerprinted_files(root):
        digest.update(os.path.relpath(path, root).encode("utf-8", "surrogateescape") + b"\0")
        _add(digest, path)
    return digest.hexdigest()


def _add(digest: "hashlib._Hash", path: Path) -> None:
    if path.is_dir() and not path.is_symlink():  # a folder of settings: every file in it
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                file = Path(folder) / name
                digest.update(os.path.relpath(file, path).encode("utf-8", "surrogateescape") + b"\0")
                _add(digest, file)
        return
    try:
        data = path.read_bytes()
    except OSError:
        digest.update(b"absent\0")
        return
    digest.update(len(data).to_bytes(8, "big") + data)


def same_settings(repo: Path, checkout: Path) -> bool:
    return settings_digest(repo) == settings_digest(checkout)
