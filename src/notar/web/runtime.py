"""`notar server` as it runs: the trust server's API with the UI on every other path.

The wiring sits here, above both: ``notar.server`` knows nothing of the UI (it takes any ASGI app for
the paths that are not its own), and ``notar.web`` builds the UI over the server's ``TrustService``.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp

from notar.server.app import NotaryApp
from notar.server.auth import TokenAuth
from notar.server.runtime import ServerConfig, config_from_environment
from notar.server.runtime import build_app as build_api
from notar.server.runtime import serve as run
from notar.server.service import TrustService
from notar.signing.verification import load_cosign_keys, load_notation_trust
from notar.web.app import create_web_app

__all__ = ["app_from_environment", "build_app", "serve"]

log = logging.getLogger("notar.web")


def build_app(config: ServerConfig) -> NotaryApp:
    """The API with the UI (which compares tags with ``config.registry_url`` when one is given, and shows
    their Notation / cosign signatures, verified with the configured trust policy and keys)."""
    given = any(v is not None for v in (config.notation_config, config.trust_policy, config.trust_store))
    notation = (
        load_notation_trust(
            config_dir=config.notation_config,
            trust_policy=config.trust_policy,
            trust_store=config.trust_store,
        )
        if given
        else None
    )
    cosign_keys = load_cosign_keys(config.cosign_keys)
    if (notation is not None or cosign_keys) and not config.registry_url:
        log.warning("--notation-config/--cosign-key are for the UI's signatures, which need --registry URL")

    def web(service: TrustService, auth: TokenAuth | None) -> ASGIApp:
        return create_web_app(
            service,
            auth=auth,
            registry_url=config.registry_url,
            notation=notation,
            cosign_keys=cosign_keys,
        )

    return build_api(config, web=web)


def app_from_environment() -> NotaryApp:
    """uvicorn factory for worker processes (``--workers N``)."""
    return build_app(config_from_environment())


def serve(config: ServerConfig) -> None:
    """Run `notar server` until interrupted."""
    run(config, build=build_app, factory="notar.web.runtime:app_from_environment")
