"""``notar gateway``: a reverse proxy in front of an OCI registry that enforces signatures on pulls and pushes.

Docker Content Trust (v1) by default; per repository, Notation and cosign signatures, all or any of them
(:mod:`notar.gateway.formats`, verified by :mod:`notar.gateway.signatures` with the material of
:mod:`notar.signing.verification`); signature artifacts themselves pass, protected (:mod:`notar.registry.artifacts`).

* :class:`TrustPolicy` -- which repositories are trust-enabled (glob patterns; default: all), and their formats.
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
