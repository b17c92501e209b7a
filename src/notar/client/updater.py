"""The client update workflow (notary's ``tufclient``): fetch and verify in TUF order, with a cache.

root (cached, trusted on first use or pinned; rotations walked version by version) -> timestamp (always
fetched; rollback and freeze checked) -> snapshot (by hash; hashes, length, version) -> targets and
delegations (by hash, depth first; an invalid delegation is ignored with its subtree, an invalid
``targets`` is fatal). Every check is a :mod:`notar.tuf` function; this module only fetches and orders.
On a verification failure the whole update is retried once after re-fetching root, as notary does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from notar.client.cache import MetadataCache
from notar.client.errors import (
    NotSignedError,
    PermissionDeniedError,
    TrustDataInvalidError,
    TrustServerUnavailableError,
)
from notar.client.remote import MAX_ROOT_BYTES, MAX_TIMESTAMP_BYTES
from notar.client.sources import MetadataNotFoundError, MetadataSource
from notar.crypto import PublicKey
from notar.encoding import GoTime
from notar.tuf import (
    DelegatedRole,
    Envelope,
    FileMeta,
    HashMismatchError,
    RollbackError,
    Root,
    Snapshot,
    Targets,
    Timestamp,
    TrustedSet,
    TrustPinning,
    TufError,
    roles,
)

__all__ = ["RELEASES", "TargetMatch", "TrustedRepo", "Updater"]

log = logging.getLogger("notar.client")
T = TypeVar("T")
RELEASES = "targets/releases"


@dataclass(frozen=True, slots=True)
class TargetMatch:
    name: str
    role: str
    meta: FileMeta


class TrustedRepo:
    """A verified view of one repository's trust data (a complete :class:`notar.tuf.TrustedSet`).

    ``state`` keeps, per role, the keys it was verified against and the key IDs that signed it, and the
    typed errors of the delegations that were ignored; the attributes below are the same data shaped
    for readers (envelopes by role, allowed path prefixes, ignored delegations with their messages).
    """

    def __init__(self, state: TrustedSet) -> None:
        if state.root is None or state.timestamp is None or state.snapshot is None:
            raise TrustDataInvalidError(f"trust data for {state.gun} is incomplete")
        self.state = state
        self.gun = state.gun
        self.root: Envelope[Root] = state.root.envelope
        self.timestamp: Envelope[Timestamp] = state.timestamp.envelope
        self.snapshot: Envelope[Snapshot] = state.snapshot.envelope
        self.targets: dict[str, Envelope[Targets]] = {r: v.envelope for r, v in state.targets.items()}
        # role -> allowed prefixes (None: all)
        self.paths: dict[str, list[str] | None] = {
            r: None if r == roles.TARGETS else list(v.keys.paths or []) for r, v in state.targets.items()
        }
        self.ignored: dict[str, str] = {r: str(e) for r, e in state.ignored.items()}

    def role_order(self) -> list[str]:
        """Verified roles, depth first in delegation order (notary's walk order)."""
        return list(self.targets)

    def signed_by(self, role: str) -> dict[str, PublicKey]:
        """The keys (by the ID the role's signatures use) whose signatures on verified *role* are valid."""
        verified = self.state.targets.get(role)
        if verified is None:
            return {}
        return {kid: verified.keys.keys[kid] for kid in sorted(verified.signed_by)}

    def _visible(self, role: str, name: str) -> bool:
        allowed = self.paths.get(role)
        return allowed is None or any(name.startswith(p) for p in allowed)

    def find(self, name: str, role: str) -> TargetMatch | None:
        """*name* as signed directly in *role* (respecting the role's paths)."""
        env = self.targets.get(role)
        if env is None or not self._visible(role, name):
            return None
        meta = env.signed.targets.get(name)
        return TargetMatch(name, role, meta) if meta is not None else None

    def resolve(self, tag: str, priority: tuple[str, ...] = (RELEASES, roles.TARGETS)) -> TargetMatch:
        """Docker's rule: ``targets/releases`` wins over ``targets``; other delegations do not count."""
        for role in priority:
            match = self.find(tag, role)
            if match is not None:
                if "sha256" not in match.meta.hashes:
                    raise NotSignedError(f"no valid hash for {tag}, expecting sha256")
                return match
        elsewhere = [r for r in self.targets if r not in priority and self.find(tag, r)]
        if elsewhere:
            raise NotSignedError(f"No trust data for {tag}")
        raise NotSignedError(f"No valid trust data for {tag}")

    def signed_tags(self) -> dict[str, TargetMatch]:
        """Every tag that resolves (docker's rule), with what it resolves to."""
        out: dict[str, TargetMatch] = {}
        for name in {m.name for m in self.all_targets()}:
            try:
                out[name] = self.resolve(name)
            except NotSignedError:
                continue
        return out

    def all_targets(self) -> list[TargetMatch]:
        """Every (name, role) pair visible in the verified roles, in walk order."""
        out = []
        for role, env in self.targets.items():
            for name, meta in sorted(env.signed.targets.items()):
                if self._visible(role, name):
                    out.append(TargetMatch(name, role, meta))
        return out

    def delegations(self) -> list[tuple[DelegatedRole, dict[str, PublicKey]]]:
        """Every delegation entry listed by a verified role, with the parent's key objects."""
        out: list[tuple[DelegatedRole, dict[str, PublicKey]]] = []
        for env in self.targets.values():
            d = env.signed.delegations
            for r in d.roles:
                out.append((r, {kid: d.keys[kid] for kid in r.keyids if kid in d.keys}))
        return out


class Updater:
    """Brings the cache of one GUN up to date with a trust server and returns the verified view."""

    def __init__(
        self,
        gun: str,
        server: MetadataSource,
        cache: MetadataCache,
        *,
        pinning: TrustPinning | None = None,
        clock: Callable[[], GoTime] = GoTime.now,
        offline: bool = True,
    ) -> None:
        self.gun = gun
        self.server = server
        self.cache = cache
        self.pinning = pinning
        self.clock = clock
        # offline: when the server cannot give a timestamp, go on with the cached one while it is valid (what
        # notary and docker do for a client); False for enforcement points, which must fail closed instead
        self.offline = offline
        self._cache_reads: dict[str, bytes | None] = {}

    def refresh(self) -> TrustedRepo:
        """Update and verify; retry once from a fresh root after a verification failure."""
        with self.cache.lock(self.gun):
            try:
                return self._update(fetch_root=False)
            except (TufError, TrustDataInvalidError, MetadataNotFoundError) as first:
                log.debug("update of %s failed (%s); retrying with a fresh root", self.gun, first)
                try:
                    return self._update(fetch_root=True)
                except (TufError, MetadataNotFoundError) as e:
                    raise TrustDataInvalidError(f"trust data for {self.gun} is invalid: {e}") from e

    # -- steps: fetch what the trusted state asks for, in its order ---------------------------------------
    def _cached(self, role: str) -> bytes | None:
        """The cached bytes of *role*, read from disk at most once per update."""
        if role not in self._cache_reads:
            self._cache_reads[role] = self.cache.load(self.gun, role)
        return self._cache_reads[role]

    def _update(self, *, fetch_root: bool) -> TrustedRepo:
        self._cache_reads = {}
        state = TrustedSet(self.gun, self.clock(), self.pinning)
        self._root(state, fetch=fetch_root)
        self._timestamp(state)
        previous = self._cached(roles.SNAPSHOT)
        try:
            self._cached_or_fetched(
                roles.SNAPSHOT,
                state.snapshot_meta(),
                lambda data: state.update_snapshot(data, previous=previous),
            )
        except HashMismatchError as e:
            if e.role == roles.ROOT:
                raise TrustDataInvalidError(f"root changed on the server: {e}") from e
            raise
        self._targets(state)
        repo = TrustedRepo(state)
        verified = {
            roles.ROOT: repo.root.data,
            roles.TIMESTAMP: repo.timestamp.data,
            roles.SNAPSHOT: repo.snapshot.data,
            **{role: env.data for role, env in repo.targets.items()},
        }
        self.cache.store(self.gun, {r: d for r, d in verified.items() if self._cached(r) != d})
        return repo

    def _root(self, state: TrustedSet, *, fetch: bool) -> None:
        cached = self._cached(roles.ROOT)
        if cached is None:
            # 404: the repository does not exist; otherwise trusted on first use, or pinned
            state.load_first_root(self.server.get(self.gun, roles.ROOT, max_bytes=MAX_ROOT_BYTES))
            return
        trusted = state.load_anchor_root(cached)
        if not fetch and not trusted.signed.is_expired(state.now):
            return
        newest = self.server.get(self.gun, roles.ROOT, max_bytes=MAX_ROOT_BYTES)
        if newest == cached:
            state.require_unexpired_root()
            return
        latest = Envelope.from_bytes(newest, expect=Root).signed.version
        # walk N.root.json from the trusted version to the newest, each signed by its predecessor
        try:
            for version in range(trusted.signed.version + 1, latest):
                step = self.server.get(self.gun, roles.ROOT, version=version, max_bytes=MAX_ROOT_BYTES)
                state.update_root(step, version=version, final=False)
            state.update_root(newest)
        except RollbackError as e:  # said as it is: a fresh root will not change it
            raise TrustDataInvalidError(str(e)) from e

    def _timestamp(self, state: TrustedSet) -> None:
        cached = self._cached(roles.TIMESTAMP)
        try:
            data = self.server.get(self.gun, roles.TIMESTAMP, max_bytes=MAX_TIMESTAMP_BYTES)
        except (TrustServerUnavailableError, MetadataNotFoundError, PermissionDeniedError) as e:
            if cached is None or not self.offline:
                raise
            log.warning("using cached timestamp for %s: %s", self.gun, e)
            state.use_timestamp(cached)
            return
        state.update_timestamp(data, previous=cached)

    def _cached_or_fetched(self, role: str, meta: FileMeta, load: Callable[[bytes], T]) -> T:
        """``load`` the cached bytes of *role* when they are the ones *meta* names, else the server's.

        The trusted state checks the bytes against *meta* as it loads them; a cached copy that does not
        match (:class:`HashMismatchError` for this role) is replaced by the file fetched by its hash, so
        the hashes are computed once per file, not once to choose and again to trust.
        """
        cached = self._cached(role)
        if cached is not None:
            try:
                return load(cached)
            except HashMismatchError as e:
                if e.role != role:
                    raise
        sha = meta.sha256_hex()
        if sha is None:
            raise TrustDataInvalidError(f"no sha256 for {role}: cannot fetch it by hash")
        return load(self.server.get(self.gun, role, checksum=sha, max_bytes=meta.length))

    def _targets(self, state: TrustedSet) -> None:
        """Depth-first pre-order from ``targets``; delegations failing checks are ignored with their subtree.

        Like notary: an expired or under-signed delegation is ignored with its subtree. Its cached file
        stays, so a later rollback of it is still caught by the version check. Any other failure (hash
        mismatch, rollback, malformed file) fails the whole update.
        """
        queue = [roles.TARGETS]
        visited: set[str] = set()
        while queue:
            role = queue.pop(0)
            if role in visited:
                continue  # each role once: a delegation listed twice must not double the walk
            visited.add(role)
            meta = state.listed(role)
            if meta is None:
                continue  # never published: nothing signed there
            previous = self._cached(role)
            load = functools.partial(state.update_targets, role, previous=previous, ignorable=True)
            verified = self._cached_or_fetched(role, meta, load)
            if verified is None:
                log.warning("ignoring delegation %s of %s: %s", role, self.gun, state.ignored[role])
                continue
            queue[0:0] = state.children(role)
