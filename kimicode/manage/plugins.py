"""`kimicode plugin install PATH|GIT_URL|NAME@MARKETPLACE | list | enable NAME | disable NAME | remove NAME`
and `kimicode plugin marketplace add PATH|GIT_URL | list`.

Exit codes: 0 done, 1 the plugin or marketplace could not be read or installed, 2 a usage problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kimicode.config import kimicode_home
from kimicode.manage.common import fail

plugin_app = typer.Typer(
    name="plugin",
    help="Install and manage plugins (Claude Code's plugin layout: commands, agents, skills, hooks, MCP servers).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
market_app = typer.Typer(
    name="marketplace",
    help="Marketplaces: lists of installable plugins (.claude-plugin/marketplace.json).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
plugin_app.add_typer(market_app, name="marketplace")


def register_plugins(app: typer.Typer) -> None:
    app.add_typer(plugin_app, name="plugin")


def _failed(exc: Exception) -> typer.Exit:
    return fail(str(exc), code=1)


@plugin_app.command("install")
def install_plugin(
    source: Annotated[str, typer.Argument(help="A plugin folder, a git URL, or NAME@MARKETPLACE.")],
) -> None:
    """Install a plugin (copied or cloned; nothing in it runs now). Installing trusts it: its hooks and MCP
    servers run in every folder until it is disabled or removed."""
    from kimicode.extensions.plugin_store import install, looks_like_git_url
    from kimicode.extensions.plugins import PluginError

    home = kimicode_home()
    plugin_name, at, market = source.rpartition("@")
    try:
        if at and plugin_name and not Path(source).expanduser().exists() and not looks_like_git_url(source):
            from kimicode.extensions.plugin_market import install_listed

            plugin, manifest = install_listed(home, plugin_name, market)
        else:
            plugin, manifest = install(source, home)
    except PluginError as exc:
        raise _failed(exc) from None
    version = f" {manifest.version}" if manifest.version else ""
    typer.echo(f"installed plugin {plugin.name}{version} into {plugin.root} (enabled)")
    _show_contents(plugin.root)


@plugin_app.command("list")
def list_plugins() -> None:
    """The installed plugins: name, enabled or disabled, where from, and what each brings."""
    from kimicode.extensions.plugin_index import installed_plugins
    from kimicode.extensions.plugins import PluginError, read_manifest

    plugins = installed_plugins(kimicode_home())
    if not plugins:
        typer.echo("no plugins installed")
    for plugin in plugins:
        state = "enabled" if plugin.enabled else "disabled"
        try:
            manifest = read_manifest(plugin.root)
            about = f" {manifest.version}" if manifest.version else ""
            about += f" — {manifest.description}" if manifest.description else ""
        except PluginError as exc:
            about = f" (broken: {exc})"
        typer.echo(f"{plugin.name}{about} [{state}] from {plugin.source or '?'}")
        _show_contents(plugin.root)


@plugin_app.command("enable")
def enable_plugin(name: Annotated[str, typer.Argument(help="The plugin's name.")]) -> None:
    """Enable an installed plugin: its commands, agents, skills, hooks and MCP servers load again."""
    _set(name, True)


@plugin_app.command("disable")
def disable_plugin(name: Annotated[str, typer.Argument(help="The plugin's name.")]) -> None:
    """Disable a plugin: nothing from it loads until it is enabled again."""
    _set(name, False)


def _set(name: str, enabled: bool) -> None:
    from kimicode.extensions.plugin_store import set_enabled
    from kimicode.extensions.plugins import PluginError

    try:
        set_enabled(kimicode_home(), name, enabled)
    except PluginError as exc:
        raise _failed(exc) from None
    typer.echo(f"plugin {name} {'enabled' if enabled else 'disabled'}")


@plugin_app.command("remove")
def remove_plugin(name: Annotated[str, typer.Argument(help="The plugin's name.")]) -> None:
    """Remove a plugin and its installed copy."""
    from kimicode.extensions.plugin_store import remove
    from kimicode.extensions.plugins import PluginError

    try:
        remove(kimicode_home(), name)
    except PluginError as exc:
        raise _failed(exc) from None
    typer.echo(f"removed plugin {name}")


@market_app.command("add")
def add_marketplace(
    source: Annotated[str, typer.Argument(help="A marketplace folder or git URL.")],
) -> None:
    """Add a marketplace; then `kimicode plugin install PLUGIN@MARKETPLACE`."""
    from kimicode.extensions.plugin_market import add_marketplace as add
    from kimicode.extensions.plugins import PluginError

    try:
        name, listings = add(kimicode_home(), source)
    except PluginError as exc:
        raise _failed(exc) from None
    typer.echo(f"added marketplace {name} ({len(listings)} plugin{'s' * (len(listings) != 1)})")
    for listing in listings:
        typer.echo(f"  {listing.name}@{name}" + (f" — {listing.description}" if listing.description else ""))


@market_app.command("list")
def list_marketplaces() -> None:
    """The added marketplaces and the plugins each lists."""
    from kimicode.extensions.plugin_market import marketplaces, read_marketplace
    from kimicode.extensions.plugins import PluginError

    known = marketplaces(kimicode_home())
    if not known:
        typer.echo("no marketplaces added")
    for name, entry in known.items():
        typer.echo(f"{name} from {entry.get('source', '?')}")
        try:
            _name, listings = read_marketplace(Path(entry.get("root", "")))
        except PluginError as exc:
            typer.echo(f"  (broken: {exc})")
            continue
        for listing in listings:
            typer.echo(f"  {listing.name}@{name}" + (f" — {listing.description}" if listing.description else ""))


def _show_contents(root: Path) -> None:
    from kimicode.extensions.plugins import read_contents

    for line in read_contents(root).lines():
        typer.echo(f"  {line}")
