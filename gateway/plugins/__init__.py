"""Plugin namespace for gateway interfaces; other distributions may add modules here.

Built-in implementations live in this package too; see ``gateway.plugins.builtin``.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__: list[str] = []
