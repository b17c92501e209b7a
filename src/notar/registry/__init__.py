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
* :mod:`.referrers` -- the manifests that refer to a manifest (signatures): :func:`list_referrers`
  (referrers API, else the ``sha256-<hex>`` tag schema), :func:`add_referrer`, cosign's ``.sig`` tag
  (:func:`read_cosign_signatures`, :func:`append_cosign_signature`), and the merge-and-retry
  :func:`update_tagged_manifest` they share.
* :class:`RegistryError` and its branches -- every failure, with the registry named in the message.

Layering: imports only :mod:`notar.errors` (and the package version), never ``notar.tuf``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notar._lazy import lazy_getattr
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
from notar.registry.reference import (
    DEFAULT_DOMAIN,
    DOCKER_HUB_API_HOST,
    Reference,
    is_insecure_registry,
    parse_reference,
    registry_base_url,
)

if TYPE_CHECKING:
    from notar.registry.auth import Challenge, parse_www_authenticate
    from notar.registry.client import DEFAULT_CHUNK_SIZE, MAX_MANIFEST_SIZE, USER_AGENT, RegistryClient
    from notar.registry.credentials import (
        CredentialProvider,
        Credentials,
        DockerConfigCredentials,
        StaticCredentials,
        docker_config_path,
    )
    from notar.registry.manifest import (
        ACCEPTED_MANIFEST_TYPES,
        ARTIFACT_TYPE_NOTATION_SIGNATURE,
        MEDIA_TYPE_COSIGN_SIMPLESIGNING,
        MEDIA_TYPE_DOCKER_MANIFEST,
        MEDIA_TYPE_DOCKER_MANIFEST_LIST,
        MEDIA_TYPE_OCI_CONFIG,
        MEDIA_TYPE_OCI_EMPTY,
        MEDIA_TYPE_OCI_INDEX,
        MEDIA_TYPE_OCI_MANIFEST,
        Descriptor,
        Manifest,
    )
    from notar.registry.referrers import (
        ConcurrentUpdateError,
        CosignSignatures,
        Referrer,
        ReferrerAdded,
        Referrers,
        ReferrersSource,
        RetryPolicy,
        TaggedUpdate,
        Update,
        add_referrer,
        append_cosign_signature,
        cosign_signature_tag,
        list_referrers,
        read_cosign_signatures,
        referrers_tag,
        update_tagged_manifest,
    )

# Imported on first use (notar._lazy): a command loads only the modules it needs.
_WHERE = {
    "auth": ("Challenge", "parse_www_authenticate"),
    "client": ("DEFAULT_CHUNK_SIZE", "MAX_MANIFEST_SIZE", "USER_AGENT", "RegistryClient"),
    "credentials": (
        "CredentialProvider",
        "Credentials",
        "DockerConfigCredentials",
        "StaticCredentials",
        "docker_config_path",
    ),
    "manifest": (
        "ACCEPTED_MANIFEST_TYPES",
        "ARTIFACT_TYPE_NOTATION_SIGNATURE",
        "MEDIA_TYPE_COSIGN_SIMPLESIGNING",
        "MEDIA_TYPE_DOCKER_MANIFEST",
        "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
        "MEDIA_TYPE_OCI_CONFIG",
        "MEDIA_TYPE_OCI_EMPTY",
        "MEDIA_TYPE_OCI_INDEX",
        "MEDIA_TYPE_OCI_MANIFEST",
        "Descriptor",
        "Manifest",
    ),
    "referrers": (
        "ConcurrentUpdateError",
        "CosignSignatures",
        "Referrer",
        "ReferrerAdded",
        "Referrers",
        "ReferrersSource",
        "RetryPolicy",
        "TaggedUpdate",
        "Update",
        "add_referrer",
        "append_cosign_signature",
        "cosign_signature_tag",
        "list_referrers",
        "read_cosign_signatures",
        "referrers_tag",
        "update_tagged_manifest",
    ),
}
if not TYPE_CHECKING:
    __getattr__ = lazy_getattr(__name__, globals(), _WHERE)

__all__ = [
    "ACCEPTED_MANIFEST_TYPES",
    "ARTIFACT_TYPE_NOTATION_SIGNATURE",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DOMAIN",
    "DOCKER_HUB_API_HOST",
    "MAX_MANIFEST_SIZE",
    "MEDIA_TYPE_COSIGN_SIMPLESIGNING",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_EMPTY",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_MANIFEST",
    "USER_AGENT",
    "AuthenticationError",
    "BlobNotFoundError",
    "Challenge",
    "ConcurrentUpdateError",
    "CosignSignatures",
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
    "Referrer",
    "ReferrerAdded",
    "Referrers",
    "ReferrersSource",
    "RegistryClient",
    "RegistryError",
    "RegistryProtocolError",
    "RegistryUnavailableError",
    "RepositoryNotFoundError",
    "RetryPolicy",
    "StaticCredentials",
    "TaggedUpdate",
    "UnsupportedManifestError",
    "Update",
    "add_referrer",
    "append_cosign_signature",
    "compute_digest",
    "cosign_signature_tag",
    "docker_config_path",
    "is_insecure_registry",
    "list_referrers",
    "parse_reference",
    "parse_www_authenticate",
    "read_cosign_signatures",
    "referrers_tag",
    "registry_base_url",
    "update_tagged_manifest",
    "validate_digest",
]
