"""The notar client: verified trust data (the TUF update workflow) and signing, docker-trust compatible.

* :class:`TrustServer` -- the Notary v1 HTTP API with size caps.
* :class:`Updater` / :class:`TrustedRepo` -- fetch from a :class:`MetadataSource` and verify in TUF order
  (:class:`notar.tuf.TrustedSet`) with a :class:`MetadataCache` (on disk: :class:`TrustCache`).
* :class:`Repository` -- initialise, add/remove signers, sign/revoke tags, rotate keys.
* :func:`inspect_data` / :func:`render_json` / :func:`render_pretty` -- ``docker trust inspect`` output.
"""

from __future__ import annotations

from notar.client.cache import MemoryCache, MetadataCache, TrustCache
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
from notar.client.inspect import inspect_data, render_json, render_pretty
from notar.client.keys import ChainedKeys, KeySource, MemoryKeys, ReferencedKeys, trust_dir_keys
from notar.client.remote import TrustServer
from notar.client.repository import Repository, SignResult
from notar.client.sources import MemorySource, MetadataNotFoundError, MetadataSource
from notar.client.updater import RELEASES, TargetMatch, TrustedRepo, Updater

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
