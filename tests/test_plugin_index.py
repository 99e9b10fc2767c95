import json
from pathlib import Path

from kimicode.extensions.plugin_index import enabled_plugins, index_path, installed_plugins


def test_enabled_plugins_skip_disabled_missing_and_malformed_entries(tmp_path: Path) -> None:
    present, gone, off = tmp_path / "a", tmp_path / "gone", tmp_path / "c"
    present.mkdir()
    off.mkdir()
    index_path(tmp_path).parent.mkdir(parents=True)
    index_path(tmp_path).write_text(json.dumps({"plugins": [
        {"name": "a", "root": str(present), "enabled": True, "source": "/src/a"},
        {"name": "b", "root": str(gone)},
        {"name": "c", "root": str(off), "enabled": False},
        {"name": 3, "root": "x"},
        "junk",
    ]}))
    assert [p.name for p in installed_plugins(tmp_path)] == ["a", "b", "c"]
    assert [(p.name, p.source) for p in enabled_plugins(tmp_path)] == [("a", "/src/a")]


def test_a_broken_index_means_no_plugins(tmp_path: Path) -> None:
    assert installed_plugins(tmp_path) == []
    index_path(tmp_path).parent.mkdir(parents=True)
    index_path(tmp_path).write_text("{not json")
    assert installed_plugins(tmp_path) == []
