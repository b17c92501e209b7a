"""The notar client: verified trust data (the TUF update workflow) and signing, docker-trust compatible.

* :class:`TrustServer` -- the Notary v1 HTTP API with size caps.
* :class:`Updater` / :class:`TrustedRepo` -- fetch from a :class:`MetadataSource` and verify in TUF order
  (:class:`notar.tuf.TrustedSet`) with a :class:`MetadataCache` (on disk: :class:`TrustCache`).
* :class:`Repository` -- initialise, add/remove signers, sign/revoke tags, rotate keys.
* :func:`inspect_data` / :func:`render_json` / :func:`render_pretty` -- ``docker trust inspect`` output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notar._lazy import lazy_getattr
from notar.client.errors import (
    ClientError,
    NotSignedError,
    PermissionDeniedError,
    PublishRejectedError,
    RepositoryNotFoundError,
    TrustDataInvalidError,
    TrustServerError,
    TrustServerUnavailableError,
    VersionConflictError,
)

if TYPE_CHECKING:
    from notar.client.cache import MemoryCache, MetadataCache, TrustCache
    from notar.client.inspect import inspect_data, render_json, render_pretty
    from notar.client.keys import ChainedKeys, KeySource, MemoryKeys, ReferencedKeys, trust_dir_keys
    from notar.client.remote import TrustServer
    from notar.client.repository import Repository, SignResult
    from notar.client.sources import MemorySource, MetadataNotFoundError, MetadataSource
    from notar.client.updater import RELEASES, TargetMatch, TrustedRepo, Updater

# Imported on first use (notar._lazy): a command loads only the modules it needs.
_WHERE = {
    "cache": ("MemoryCache", "MetadataCache", "TrustCache"),
    "inspect": ("inspect_data", "render_json", "render_pretty"),
    "keys": ("ChainedKeys", "KeySource", "MemoryKeys", "ReferencedKeys", "trust_dir_keys"),
    "remote": ("TrustServer",),
    "repository": ("Repository", "SignResult"),
    "sources": ("MemorySource", "MetadataNotFoundError", "MetadataSource"),
    "updater": ("RELEASES", "TargetMatch", "TrustedRepo", "Updater"),
}
if not TYPE_CHECKING:
    __getattr__ = lazy_getattr(__name__, globals(), _WHERE)

__all__ = [
    "RELEASES",
    "ChainedKeys",
    "KeySource",
    "MemoryCache",
    "MemoryKeys",
    "MemorySource",
    "MetadataCache",
    "MetadataSource",
    "ClientError",
    "MetadataNotFoundError",
    "NotSignedError",
    "PermissionDeniedError",
    "PublishRejectedError",
    "ReferencedKeys",
    "Repository",
    "RepositoryNotFoundError",
    "SignResult",
    "TargetMatch",
    "TrustCache",
    "TrustDataInvalidError",
    "TrustServer",
    "TrustServerError",
    "TrustServerUnavailableError",
    "TrustedRepo",
    "Updater",
    "VersionConflictError",
    "inspect_data",
    "render_json",
    "render_pretty",
    "trust_dir_keys",
]
