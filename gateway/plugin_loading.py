"""Finding a named plugin; an unknown name is a start-up error listing the known ones."""

from __future__ import annotations

from typing import Any

from twisted.plugin import getPlugins
from zope.interface.interface import InterfaceClass

from gateway.config import ConfigError


def available(interface: InterfaceClass) -> dict[str, Any]:
    import gateway.plugins

    found: dict[str, Any] = {}
    for plugin in getPlugins(interface, gateway.plugins):
        found.setdefault(plugin.name, plugin)
    return found


def build(interface: InterfaceClass, name: str, key: str, settings: Any) -> Any:
    """Build the plugin called ``name`` (the value of config ``key``) for ``interface``."""
    plugins = available(interface)
    if name not in plugins:
        raise ConfigError(key, f"no plugin named {name!r} (available: {', '.join(sorted(plugins)) or 'none'})")
    return plugins[name].build(settings)
