"""OCI distribution (Docker registry v2) client: image references, auth, manifests, blobs, tags.

* :func:`parse_reference` / :class:`Reference` -- image references normalised like docker
  (``alpine`` -> ``docker.io/library/alpine``); ``Reference.name`` is the Notary GUN.
* :class:`RegistryClient` -- one registry: ``get_manifest`` (digest-verified), ``head_manifest``,
  ``put_manifest``, ``delete_manifest``, ``blob_exists``, ``get_blob`` (streamed, verified),
  ``push_blob`` (monolithic or chunked, optional cross-repository mount), ``tags``, ``ping``; its
  requests go through a ``RegistrySession`` (authentication, redirects, errors: :mod:`.session`), its
  blob transfers are in :mod:`.blobs`.
* :mod:`.manifest` -- the one home of manifest shapes: media types, how a manifest's kind is told,
  :class:`Manifest` and :class:`Descriptor`.
* :class:`Credentials`, :class:`StaticCredentials`, :class:`DockerConfigCredentials` -- explicit
  credentials or docker's ``config.json`` and ``docker-credential-*`` helpers.
* :class:`RegistryError` and its branches -- every failure, with the registry named in the message.

Layering: imports only :mod:`notar.errors` (and the package version), never ``notar.tuf``.
"""

from __future__ import annotations

from notar.registry.auth import Challenge, parse_www_authenticate
from notar.registry.client import DEFAULT_CHUNK_SIZE, MAX_MANIFEST_SIZE, USER_AGENT, RegistryClient
from notar.registry.credentials import (
    CredentialProvider,
    Credentials,
    DockerConfigCredentials,
    StaticCredentials,
    docker_config_path,
)
from notar.registry.digest import compute_digest, validate_digest
from notar.registry.errors import (
    AuthenticationError,
    BlobNotFoundError,
    CredentialsError,
    DigestMismatchError,
    ErrorDetail,
    InvalidDigestError,
    InvalidReferenceError,
    ManifestNotFoundError,
    NotFoundError,
    RegistryError,
    RegistryProtocolError,
    RegistryUnavailableError,
    RepositoryNotFoundError,
    UnsupportedManifestError,
)
from notar.registry.manifest import (
    ACCEPTED_MANIFEST_TYPES,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    Manifest,
)
from notar.registry.reference import (
    DEFAULT_DOMAIN,
    DOCKER_HUB_API_HOST,
    Reference,
    is_insecure_registry,
    parse_reference,
    registry_base_url,
)

__all__ = [
    "ACCEPTED_MANIFEST_TYPES",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DOMAIN",
    "DOCKER_HUB_API_HOST",
    "MAX_MANIFEST_SIZE",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_MANIFEST",
    "USER_AGENT",
    "AuthenticationError",
    "BlobNotFoundError",
    "Challenge",
    "CredentialProvider",
    "Credentials",
    "CredentialsError",
    "Descriptor",
    "DigestMismatchError",
    "DockerConfigCredentials",
    "ErrorDetail",
    "InvalidDigestError",
    "InvalidReferenceError",
    "Manifest",
    "ManifestNotFoundError",
    "NotFoundError",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryProtocolError",
    "RegistryUnavailableError",
    "RepositoryNotFoundError",
    "StaticCredentials",
    "UnsupportedManifestError",
    "compute_digest",
    "docker_config_path",
    "is_insecure_registry",
    "parse_reference",
    "parse_www_authenticate",
    "registry_base_url",
    "validate_digest",
]
