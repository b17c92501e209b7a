"""The client update workflow (notary's ``tufclient``): fetch and verify in TUF order, with a cache.

root (cached, trusted on first use or pinned; rotations walked version by version) -> timestamp (always
fetched; rollback and freeze checked) -> snapshot (by hash; hashes, length, version) -> targets and
delegations (by hash, depth first; an invalid delegation is ignored with its subtree, an invalid
``targets`` is fatal). Every check is a :mod:`notar.tuf` function; this module only fetches and orders.
On a verification failure the whole update is retried once after re-fetching root, as notary does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from notar.client.cache import TrustCache
from notar.client.errors import (
    NotSignedError,
    PermissionDeniedError,
    RepositoryNotFoundError,
    TrustDataInvalidError,
    TrustServerUnavailableError,
)
from notar.client.remote import MAX_ROOT_BYTES, MAX_TIMESTAMP_BYTES, MetadataNotFoundError, TrustServer
from notar.crypto import PublicKey
from notar.encoding import GoTime
from notar.tuf import (
    DelegatedRole,
    Envelope,
    ExpiredError,
    FileMeta,
    RoleError,
    RoleKeys,
    Root,
    SignatureError,
    Snapshot,
    Targets,
    Timestamp,
    TrustPinning,
    TufError,
    check_expiry,
    check_hashes,
    check_version,
    delegated_role_keys,
    roles,
    verify_root,
    verify_signatures,
)

__all__ = ["RELEASES", "TargetMatch", "TrustedRepo", "Updater"]

log = logging.getLogger("notar.client")
RELEASES = "targets/releases"


@dataclass(frozen=True, slots=True)
class TargetMatch:
    name: str
    role: str
    meta: FileMeta


@dataclass
class TrustedRepo:
    """A verified view of one repository's trust data."""

    gun: str
    root: Envelope[Root]
    timestamp: Envelope[Timestamp]
    snapshot: Envelope[Snapshot]
    targets: dict[str, Envelope[Targets]] = field(default_factory=dict)  # role -> verified file
    paths: dict[str, list[str] | None] = field(default_factory=dict)  # role -> allowed prefixes (None: all)
    ignored: dict[str, str] = field(default_factory=dict)  # delegation -> why it was ignored

    def role_order(self) -> list[str]:
        """Verified roles, depth first in delegation order (notary's walk order)."""
        return list(self.targets)

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
        server: TrustServer,
        cache: TrustCache,
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

    # -- steps ------------------------------------------------------------------------------------------
    def _cached(self, role: str) -> bytes | None:
        """The cached bytes of *role*, read from disk at most once per update."""
        if role not in self._cache_reads:
            self._cache_reads[role] = self.cache.load(self.gun, role)
        return self._cache_reads[role]

    def _update(self, *, fetch_root: bool) -> TrustedRepo:
        self._cache_reads = {}
        now = self.clock()
        root = self._root(now, fetch=fetch_root)
        timestamp = self._timestamp(root, now)
        snapshot = self._snapshot(root, timestamp, now)
        meta_root = snapshot.signed.meta.get(roles.ROOT)
        if meta_root is not None:
            try:
                check_hashes(root.data, meta_root, roles.ROOT)
            except TufError as e:
                raise TrustDataInvalidError(f"root changed on the server: {e}") from e
        repo = TrustedRepo(self.gun, root, timestamp, snapshot)
        self._targets(repo, now)
        verified = {
            roles.ROOT: root.data,
            roles.TIMESTAMP: timestamp.data,
            roles.SNAPSHOT: snapshot.data,
            **{role: env.data for role, env in repo.targets.items()},
        }
        self.cache.store(self.gun, {r: d for r, d in verified.items() if self._cached(r) != d})
        return repo

    def _root(self, now: GoTime, *, fetch: bool) -> Envelope[Root]:
        cached_bytes = self._cached(roles.ROOT)
        if cached_bytes is None:
            data = self.server.get(self.gun, roles.ROOT, max_bytes=MAX_ROOT_BYTES)  # 404: repo does not exist
            root = Envelope.from_bytes(data, expect=Root)
            verify_root(root, self.gun, now=now, pinning=self.pinning)  # trust on first use, or pinned
            check_expiry(root.signed, now, roles.ROOT)
            return root
        cached = Envelope.from_bytes(cached_bytes, expect=Root)
        verify_root(cached, self.gun, now=None)  # our own anchor: self-consistent, expiry not required
        if not fetch and not cached.signed.is_expired(now):
            return cached
        try:
            data = self.server.get(self.gun, roles.ROOT, max_bytes=MAX_ROOT_BYTES)
        except RepositoryNotFoundError:
            raise
        newest = Envelope.from_bytes(data, expect=Root)
        return self._rotate(cached, newest, now)

    def _rotate(self, trusted: Envelope[Root], newest: Envelope[Root], now: GoTime) -> Envelope[Root]:
        """Walk ``N.root.json`` from the trusted version to the newest; each signed by its predecessor."""
        if newest.signed.version < trusted.signed.version:
            raise TrustDataInvalidError(
                f"root version {newest.signed.version} is lower than the trusted version {trusted.signed.version}"
            )
        if newest.data == trusted.data:
            check_expiry(trusted.signed, now, roles.ROOT)
            return trusted
        current = trusted
        for version in range(trusted.signed.version + 1, newest.signed.version):
            step = Envelope.from_bytes(
                self.server.get(self.gun, roles.ROOT, version=version, max_bytes=MAX_ROOT_BYTES), expect=Root
            )
            if step.signed.version != version:
                raise TrustDataInvalidError(
                    f"server returned root version {step.signed.version} for {version}"
                )
            verify_root(step, self.gun, trusted=current.signed, now=None)
            current = step
        verify_root(newest, self.gun, trusted=current.signed, now=now)
        check_expiry(newest.signed, now, roles.ROOT)
        return newest

    def _timestamp(self, root: Envelope[Root], now: GoTime) -> Envelope[Timestamp]:
        cached_bytes = self._cached(roles.TIMESTAMP)
        cached = Envelope.from_bytes(cached_bytes, expect=Timestamp) if cached_bytes else None
        keys = RoleKeys.from_root(root.signed, roles.TIMESTAMP)
        try:
            data = self.server.get(self.gun, roles.TIMESTAMP, max_bytes=MAX_TIMESTAMP_BYTES)
        except (TrustServerUnavailableError, MetadataNotFoundError, PermissionDeniedError) as e:
            if cached is None or not self.offline:
                raise
            log.warning("using cached timestamp for %s: %s", self.gun, e)
            verify_signatures(cached, keys)
            check_expiry(cached.signed, now, roles.TIMESTAMP)
            return cached
        ts = Envelope.from_bytes(data, expect=Timestamp)
        verify_signatures(ts, keys)
        if cached is not None:
            try:
                verify_signatures(cached, keys)
                check_version(ts.signed, cached.signed.version, roles.TIMESTAMP)
            except TufError as e:
                if "lower than current version" in str(e):
                    raise
                # the cached one was signed by a rotated-away key: no rollback reference
        check_expiry(ts.signed, now, roles.TIMESTAMP)
        return ts

    def _fetch_by_hash(self, role: str, meta: FileMeta, cached: bytes | None) -> bytes:
        if cached is not None:
            try:
                check_hashes(cached, meta, role, check_length=True)
                return cached
            except TufError:
                pass
        sha = meta.sha256_hex()
        if sha is None:
            raise TrustDataInvalidError(f"no sha256 for {role}: cannot fetch it by hash")
        data = self.server.get(self.gun, role, checksum=sha, max_bytes=meta.length)
        check_hashes(data, meta, role, check_length=True)
        return data

    def _snapshot(self, root: Envelope[Root], ts: Envelope[Timestamp], now: GoTime) -> Envelope[Snapshot]:
        cached_bytes = self._cached(roles.SNAPSHOT)
        meta = ts.signed.meta[roles.SNAPSHOT]
        data = self._fetch_by_hash(roles.SNAPSHOT, meta, cached_bytes)
        snap = Envelope.from_bytes(data, expect=Snapshot)
        verify_signatures(snap, RoleKeys.from_root(root.signed, roles.SNAPSHOT))
        if cached_bytes is not None and cached_bytes != data:
            try:
                previous = Envelope.from_bytes(cached_bytes, expect=Snapshot)
                check_version(snap.signed, previous.signed.version, roles.SNAPSHOT)
            except TufError as e:
                if "lower than current version" in str(e):
                    raise
        check_expiry(snap.signed, now, roles.SNAPSHOT)
        return snap

    def _targets(self, repo: TrustedRepo, now: GoTime) -> None:
        """Depth-first pre-order from ``targets``; delegations failing checks are ignored with their subtree."""
        meta = repo.snapshot.signed.meta
        trusted: dict[str, Targets] = {}
        queue = [roles.TARGETS]
        while queue:
            role = queue.pop(0)
            if role not in meta:
                continue  # never published: nothing signed there
            try:
                cached_bytes = self._cached(role)
                data = self._fetch_by_hash(role, meta[role], cached_bytes)
                env = Envelope.from_bytes(data, expect=Targets, role=role)
                if role == roles.TARGETS:
                    keys = RoleKeys.from_root(repo.root.signed, roles.TARGETS)
                    paths = None
                else:
                    keys = delegated_role_keys(role, trusted)
                    paths = list(keys.paths or [])
                verify_signatures(env, keys)
                if cached_bytes is not None and cached_bytes != data:
                    previous = Envelope.from_bytes(cached_bytes, expect=Targets, role=role)
                    check_version(env.signed, previous.signed.version, role)
                check_expiry(env.signed, now, role)
            except (ExpiredError, SignatureError, RoleError) as e:
                # Like notary: an expired or under-signed delegation is ignored with its subtree. Its cached
                # file stays, so a later rollback of it is still caught by the version check. Any other
                # failure (hash mismatch, rollback, malformed file) fails the whole update.
                if role == roles.TARGETS:
                    raise
                log.warning("ignoring delegation %s of %s: %s", role, self.gun, e)
                repo.ignored[role] = str(e)
                continue
            trusted[role] = env.signed
            repo.targets[role] = env
            repo.paths[role] = paths
            queue[0:0] = [d.name for d in env.signed.delegations.roles]
