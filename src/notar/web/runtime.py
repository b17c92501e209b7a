"""`notar server` as it runs: the trust server's API with the UI on every other path.

The wiring sits here, above both: ``notar.server`` knows nothing of the UI (it takes any ASGI app for
the paths that are not its own), and ``notar.web`` builds the UI over the server's ``TrustService``.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from notar.server.app import NotaryApp
from notar.server.auth import TokenAuth
from notar.server.runtime import ServerConfig, config_from_environment
from notar.server.runtime import build_app as build_api
from notar.server.runtime import serve as run
from notar.server.service import TrustService
from notar.web.app import create_web_app

__all__ = ["app_from_environment", "build_app", "serve"]


def build_app(config: ServerConfig) -> NotaryApp:
    """The API with the UI (which compares tags with ``config.registry_url`` when one is given)."""

    def web(service: TrustService, auth: TokenAuth | None) -> ASGIApp:
        return create_web_app(service, auth=auth, registry_url=config.registry_url)

    return build_api(config, web=web)


def app_from_environment() -> NotaryApp:
    """uvicorn factory for worker processes (``--workers N``)."""
    return build_app(config_from_environment())


def serve(config: ServerConfig) -> None:
    """Run `notar server` until interrupted."""
    run(config, build=build_app, factory="notar.web.runtime:app_from_environment")
