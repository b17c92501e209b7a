"""Manifest reads upstream for the trust handlers of :mod:`notar.gateway.manifests`
(:class:`ManifestFetcher`).

* a manifest by tag or digest, its bytes checked against the digest asked for; auth challenges and
  throttling relayed to the client as the registry sent them (:data:`RELAYED`);
* a digest the trust data lets through, from the recently served manifests of the same credentials
  (:class:`~notar.gateway.manifest_reuse.RecentManifests`) when they are there;
* the manifests below an index, nested ones included, cached (content-addressed).
"""

from __future__ import annotations

import hashlib
import logging
from enum import Enum
from typing import Final

from starlette.types import Scope, Send

from notar._lru import LRUCache
from notar.gateway.errors import GatewayError
from notar.gateway.manifest_data import Fetched, index_entries, manifest_type
from notar.gateway.manifest_reuse import RecentManifests, TTLClock
from notar.gateway.proxy import UpstreamProxy, forward_headers
from notar.registry.manifest import (
    ACCEPTED_MANIFEST_TYPES,
    INDEX_MEDIA_TYPES,
    MAX_INDEX_DEPTH,
    MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED,
)

__all__ = ["RELAYED", "ManifestFetcher", "Relayed"]

log = logging.getLogger("notar.gateway")

# upstream answers to a manifest GET that are relayed as they are: auth challenges and throttling, none of
# which a client takes for a manifest; any other non-200 answer is an upstream failure
_RELAYED_STATUSES: Final = frozenset({401, 403, 429})
_CHILDREN_CACHE_SIZE: Final = 4096
_ACCEPT_ALL: Final = ", ".join(
    [*ACCEPTED_MANIFEST_TYPES, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED, "*/*;q=0.1"]
).encode()
_ERROR_BODY_BYTES: Final = 64 * 1024


class Relayed(Enum):
    """The upstream's own answer (an auth challenge, throttling) was relayed, or would have been."""

    RELAYED = "relayed"


RELAYED: Final = Relayed.RELAYED


class ManifestFetcher:
    """Manifests of *proxy*'s registry, at most *max_manifest_bytes* each; verified bytes reused for the
    *verifier*'s TTL."""

    def __init__(self, proxy: UpstreamProxy, *, max_manifest_bytes: int, verifier: TTLClock) -> None:
        self.proxy = proxy
        self.max_manifest_bytes = max_manifest_bytes
        self._children: LRUCache[str, frozenset[str]] = LRUCache(
            _CHILDREN_CACHE_SIZE
        )  # manifest -> all below
        self._recent = RecentManifests(verifier)

    async def fetch_recent(self, scope: Scope, send: Send, name: str, digest: str) -> Fetched | None:
        """:meth:`fetch` of a digest the trust data lets through, or the same bytes fetched a moment ago for
        the same credentials (:class:`~notar.gateway.manifest_reuse.RecentManifests`)."""
        key = self._recent.key(scope, name, digest)
        fetched = self._recent.get(key)
        if fetched is None:
            fetched = await self.fetch(scope, name, digest, send=send)
            if fetched is not None:
                self._recent.put(key, fetched)
        return fetched

    async def fetch(self, scope: Scope, name: str, digest: str, *, send: Send | None) -> Fetched | None:
        """GET the manifest by digest upstream and check its bytes against *digest*.

        A non-200 answer is relayed to the client as is when *send* is given (auth challenges), and
        None returned; a 404 becomes MANIFEST_UNKNOWN.
        """
        refusal = GatewayError(
            "MANIFEST_UNKNOWN", f"the signed manifest {digest} of {name} is not in the registry"
        )
        return await self.fetch_or(scope, send, name, digest, refusal)

    async def fetch_or(
        self, scope: Scope, send: Send | None, name: str, digest: str, missing: GatewayError
    ) -> Fetched | None:
        """:meth:`fetch_ref` by digest; *missing* is raised on 404, ``None`` returned when relayed."""
        fetched = await self.fetch_ref(scope, send, name, digest)
        if fetched is None:
            raise missing
        return fetched if isinstance(fetched, Fetched) else None

    async def fetch_ref(
        self, scope: Scope, send: Send | None, name: str, reference: str
    ) -> Fetched | Relayed | None:
        """GET ``name:reference`` upstream (a tag, or a digest the bytes are checked against).

        ``None`` on 404; :data:`RELAYED` for an auth challenge or throttling (relayed to the client when
        *send* is given); any other non-200 answer is UPSTREAM_UNAVAILABLE.
        """
        headers = [
            (k, v) for k, v in forward_headers(scope) if k in (b"authorization", b"user-agent", b"cookie")
        ]
        # every manifest type: the bytes are checked against the signed digest, whatever their type
        headers.append((b"accept", _ACCEPT_ALL))
        cap = self.max_manifest_bytes
        async with self.proxy.get(f"/v2/{name}/manifests/{reference}", headers) as resp:
            if resp.status == 404:
                await resp.read(_ERROR_BODY_BYTES)  # read to the end, so that the connection can be reused
                return None
            if resp.status != 200:
                if resp.status in _RELAYED_STATUSES:
                    if send is not None:
                        await resp.relay(scope, send)
                    return RELAYED
                raise GatewayError(
                    "UPSTREAM_UNAVAILABLE",
                    f"the registry answered {resp.status} for the manifest {reference} of {name}",
                )
            data = await resp.read(cap)
            if data is None:
                raise GatewayError(
                    "DENIED", f"the registry's manifest {reference} is larger than {cap} bytes"
                )
            content_type = resp.header("content-type")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if ":" in reference and actual != reference:
            raise GatewayError(
                "DENIED", f"the registry returned {actual} for the signed manifest {reference}"
            )
        return Fetched(data, manifest_type(data, content_type), actual)

    async def descendants(
        self, scope: Scope, name: str, digest: str, depth: int = 0
    ) -> frozenset[str] | None:
        """The manifests below *digest*: an index's entries and, for nested indexes, theirs (down to
        :data:`~notar.registry.manifest.MAX_INDEX_DEPTH` levels); empty for an image manifest. ``None`` when
        a manifest on the way could not be fetched (not cached, so it is asked again next time). Cached:
        content-addressed."""
        cached = self._children.get(digest)
        if cached is not None:
            return cached
        try:
            fetched = await self.fetch(scope, name, digest, send=None)
        except GatewayError as e:
            log.info("cannot check index %s of %s: %s", digest, name, e.message)
            return None
        if fetched is None:
            return None
        found: set[str] = set()
        for child, child_type in index_entries(fetched):
            found.add(child)
            if child_type in INDEX_MEDIA_TYPES and depth + 1 < MAX_INDEX_DEPTH:
                below = await self.descendants(scope, name, child, depth + 1)
                if below is None:
                    return None
                found |= below
        result = frozenset(found)
        self._children.put(digest, result)
        return result
