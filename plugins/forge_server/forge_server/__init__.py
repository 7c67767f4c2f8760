"""forge-server: ``forge serve``, a REST API with a durable job queue and a chat proxy.

Embed it::

    from forge_server.app import create_app
    from forge_server.settings import ServerSettings
    app = create_app(ServerSettings(allowed_roots=["/srv/repos"]))

Importing this package is light (no FastAPI until :mod:`forge_server.app` is
imported), so the ``forge`` CLI stays fast with the plugin installed.
"""

from __future__ import annotations

__version__ = "0.1.0"
