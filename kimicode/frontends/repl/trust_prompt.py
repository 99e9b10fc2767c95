"""The REPL's trust question: the first start in a folder whose own files would widen what kimicode may do.

Asked before the runtime is built, so the answer shapes this very run; kept (with the files' fingerprint)
in KIMICODE_HOME/trust.json, so it is asked again only when those files change.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from kimicode.config import Config, load_config

TRUST_KEYS = {"t": "trust", "i": "ignore"}
QUESTION = "[t] trust this folder  [i] ignore them "


def settle_trust(config: Config, flags: dict[str, Any]) -> Config:
    """The config to run with: unchanged, or rebuilt with the project's settings once the user trusts them."""
    if config.trusted or not config.ignored_project_settings:
        return config
    from kimicode.security.trust import ProjectFiles, TrustStore

    store = TrustStore(config.home)
    # The files as read for this config: the settings listed below come from these very bytes.
    fingerprint = (config.project_files or ProjectFiles(config.work_dir)).fingerprint()
    record = store.record(config.work_dir)
    out = sys.stdout
    if record and record.decision == "ignored" and record.config_hash == fingerprint:
        out.write("kimicode: this folder's own settings are ignored, as you chose (`kimicode trust` to use them)\n")
        return config
    changed = record is not None and record.decision in ("trusted", "ignored")
    out.write(
        "This folder's files have changed since you last answered; they would now:\n"
        if changed
        else "This folder's own settings would change what kimicode may do or where your data goes:\n"
    )
    for line in config.ignored_project_settings:
        out.write(f"  {line}\n")
    out.write("Trust it only if you know who wrote these files.\n")
    out.flush()
    from kimicode.frontends.repl.input import ask_choice

    answer = asyncio.run(ask_choice(QUESTION, TRUST_KEYS))
    if answer == "trust":
        store.set(config.work_dir, True, fingerprint)
        out.write("trusted: its settings apply (`kimicode trust --revoke` to undo)\n")
        return load_config(work_dir=config.work_dir, flags=flags)
    if answer == "ignore":
        store.set(config.work_dir, False, fingerprint)
        out.write("ignored: kimicode runs with your own settings here (`kimicode trust` to change your mind)\n")
    else:  # Ctrl-C / Ctrl-D: ignore them for this run and ask again next time
        out.write("ignored for this run\n")
    return config
