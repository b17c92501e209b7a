"""The recently served manifests cache: verified manifest bytes kept for ``--cache-ttl`` per credentials, so
that a pull of a signed tag with cached trust needs no upstream round trip (:class:`RecentManifests`).

Read and filled by :class:`~notar.gateway.manifest_fetch.ManifestFetcher`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final, Protocol

from starlette.types import Scope

from notar.gateway.manifest_data import Fetched

__all__ = ["RecentKey", "RecentManifests", "TTLClock"]

_RECENT_BYTES: Final = 32 * 1024 * 1024  # verified manifest bytes kept for --cache-ttl (see RecentManifests)
_RECENT_ENTRIES: Final = 4096

# (repository, digest, sha256 of the client's Authorization and Cookie headers, names and values)
RecentKey = tuple[str, str, bytes]


class TTLClock(Protocol):
    """What the cache reads of the trust verifier (read on every call: tests move the clock)."""

    ttl: float

    def clock(self) -> float: ...


class RecentManifests:
    """Manifest bytes the registry served a moment ago and that hashed to their digest, each for ``ttl``
    seconds (``--cache-ttl``; 0: none kept), so that a pull of a signed tag with cached trust needs no
    upstream round trip.

    The bytes are content-addressed, so they can never be the wrong manifest; what the cache does believe
    for up to ``ttl`` seconds is the registry's answer to *these credentials*: an entry is only served to
    requests that carry the same ``Authorization`` and ``Cookie`` headers as the one that fetched it (a
    client without credentials never gets what the registry gave a client with them; an auth challenge is
    still the registry's), and a manifest deleted upstream is served until its entry expires, as a tag's
    trust decision is. Which digest a tag is served as is decided on every request by the trust data, never
    by this cache. Bounded: at most :data:`_RECENT_ENTRIES` entries and :data:`_RECENT_BYTES` bytes, the
    oldest dropped first.
    """

    def __init__(
        self, verifier: TTLClock, *, max_bytes: int = _RECENT_BYTES, max_entries: int = _RECENT_ENTRIES
    ) -> None:
        self._verifier = verifier  # its ttl and clock, read on every call
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._bytes = 0
        self._entries: OrderedDict[RecentKey, tuple[float, Fetched]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(scope: Scope, name: str, digest: str) -> RecentKey:
        """The credentials are kept as a hash of their names and values: a key costs the same few bytes
        whatever a client sends (a 4 MiB Cookie per request would otherwise be held for ``ttl``, outside
        the byte budget), and ``Cookie: X`` is not ``Authorization: X``."""
        credentials = hashlib.sha256()
        for k, v in scope["headers"]:
            lower = k.lower()
            if lower in (b"authorization", b"cookie"):
                credentials.update(b"%d:%s=%d:%s;" % (len(lower), lower, len(v), v))
        return (name, digest, credentials.digest())

    def get(self, key: RecentKey) -> Fetched | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._verifier.clock() - entry[0] < self._verifier.ttl:
            return entry[1]
        self._drop(key)
        return None

    def put(self, key: RecentKey, fetched: Fetched) -> None:
        ttl, now = self._verifier.ttl, self._verifier.clock()
        if ttl <= 0 or len(fetched.data) > self._max_bytes:
            return
        self._drop(key)
        self._entries[key] = (now, fetched)
        self._bytes += len(fetched.data)
        while self._entries:  # the oldest first: expired, or beyond the bounds
            oldest, (stored, _) = next(iter(self._entries.items()))
            if (
                now - stored < ttl
                and self._bytes <= self._max_bytes
                and len(self._entries) <= self._max_entries
            ):
                break
            self._drop(oldest)

    def _drop(self, key: RecentKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1].data)
