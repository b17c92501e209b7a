"""``notar gateway``: a reverse proxy in front of an OCI registry that enforces Docker Content Trust.

* :class:`TrustPolicy` -- which repositories are trust-enabled (glob patterns; default: all).
* :class:`TrustVerifier` / :class:`TrustView` -- verified trust data per GUN, cached for a short TTL.
* :func:`create_app` / :class:`GatewaySettings` -- the ASGI app (pure ASGI, streaming).
* :class:`GatewayConfig` / :func:`build_app` / :func:`serve` -- flags to a running uvicorn server.
"""

from __future__ import annotations

from notar.gateway.app import GatewayApp, GatewaySettings, create_app
from notar.gateway.errors import ConfigError, GatewayError
from notar.gateway.policy import TrustPolicy
from notar.gateway.runtime import GatewayConfig, build_app, serve
from notar.gateway.trust import SignedTag, TrustVerifier, TrustView

__all__ = [
    "ConfigError",
    "GatewayApp",
    "GatewayConfig",
    "GatewayError",
    "GatewaySettings",
    "SignedTag",
    "TrustPolicy",
    "TrustVerifier",
    "TrustView",
    "build_app",
    "create_app",
    "serve",
]
