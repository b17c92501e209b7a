"""One trust state machine for one repository: bytes in, verified roles and typed errors out.

:class:`TrustedSet` is where the ORDER of the TUF checks lives, once, for every reader and for the
server (the role python-tuf's ``TrustedMetadataSet`` and Go notary's ``RepoBuilder`` play):

* **root** first: a cached anchor (:meth:`~TrustedSet.load_anchor_root`), a first root trusted on first use
  or through pinning (:meth:`~TrustedSet.load_first_root`), or a rotation step signed by the root trusted
  so far (:meth:`~TrustedSet.update_root`);
* **timestamp** (readers): signed by root's timestamp keys, not older than the previous one, not expired;
* **snapshot**: its bytes match the timestamp's hashes (readers), signed by root's snapshot keys, not older,
  not expired, and it vouches for every file loaded before it (the publisher's order: targets first);
* **targets**, then **delegations** parents first: the bytes match the snapshot when there is one (else
  the snapshot checks them later), signed by root's targets keys or by the parent's delegation keys,
  not older, not expired. A delegation failing an *ignorable* check (expired, under-signed, unknown)
  is set aside in :attr:`TrustedSet.ignored` with its subtree, as notary does; ``targets`` never is.

Nothing here does I/O and the clock is a value (``now``). Each verified role keeps the keys it was
checked against and the key IDs whose signatures verified (:class:`Verified`), so no caller has to
derive them again. Errors are :mod:`notar.tuf.errors` types; callers catch them by type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from notar.encoding import GoTime
from notar.tuf import roles
from notar.tuf._model import Envelope, FileMeta, Root, Signed, Snapshot, Targets, Timestamp
from notar.tuf._verify import (
    RoleKeys,
    TrustPinning,
    check_expiry,
    check_hashes,
    check_version,
    delegated_role_keys,
    verify_root,
    verify_signatures,
)
from notar.tuf.errors import (
    ExpiredError,
    HashMismatchError,
    RoleError,
    RollbackError,
    SignatureError,
    TufError,
)

__all__ = ["IGNORABLE", "TrustedSet", "Verified"]

S = TypeVar("S", bound=Signed)

#: Failures for which a delegation is set aside (with its subtree) instead of failing the whole update.
IGNORABLE: tuple[type[TufError], ...] = (ExpiredError, SignatureError, RoleError)


@dataclass(frozen=True, slots=True)
class Verified(Generic[S]):
    """A role file that passed every check, with the keys it was checked against."""

    envelope: Envelope[S]
    keys: RoleKeys
    signed_by: frozenset[str]  # IDs of the keys in ``keys`` whose signatures verified

    @property
    def signed(self) -> S:
        return self.envelope.signed

    @property
    def data(self) -> bytes:
        return self.envelope.data


@dataclass
class TrustedSet:
    """The verified state of *gun* at time *now*, built role by role in TUF order (see the module doc)."""

    gun: str
    now: GoTime
    pinning: TrustPinning | None = None
    root: Verified[Root] | None = None
    timestamp: Verified[Timestamp] | None = None
    snapshot: Verified[Snapshot] | None = None
    targets: dict[str, Verified[Targets]] = field(default_factory=dict)  # in load (walk) order
    ignored: dict[str, TufError] = field(default_factory=dict)  # delegation -> why it is not trusted
    _unchecked: dict[str, bytes] = field(default_factory=dict)  # loaded before a snapshot vouched for them

    # -- root -------------------------------------------------------------------------------------------
    def load_anchor_root(self, data: bytes) -> Verified[Root]:
        """A root this client trusted before (its cache): self-consistent; expiry is checked on use."""
        env = Envelope.from_bytes(data, expect=Root)
        verify_root(env, self.gun, now=None)
        return self._set_root(env)

    def load_first_root(self, data: bytes) -> Verified[Root]:
        """A root seen for the first time: pinned certificates, else trust on first use; not expired."""
        env = Envelope.from_bytes(data, expect=Root)
        verify_root(env, self.gun, now=self.now, pinning=self.pinning)
        check_expiry(env.signed, self.now, roles.ROOT)
        return self._set_root(env)

    def update_root(self, data: bytes, *, version: int | None = None, final: bool = True) -> Verified[Root]:
        """A newer root signed by the trusted one (a rotation step; *final*: the newest, so not expired)."""
        trusted = self._need_root()
        env = Envelope.from_bytes(data, expect=Root)
        if version is not None and env.signed.version != version:
            raise RollbackError(f"server returned root version {env.signed.version} for {version}")
        if env.signed.version < trusted.signed.version:
            raise RollbackError(
                f"root version {env.signed.version} is lower than the trusted version {trusted.signed.version}"
            )
        verify_root(env, self.gun, trusted=trusted.signed, now=self.now if final else None)
        if final:
            check_expiry(env.signed, self.now, roles.ROOT)
        return self._set_root(env)

    def trust_stored_root(self, data: bytes) -> Verified[Root]:
        """The root the server itself validated when it was stored (the base of an update)."""
        return self._set_root(Envelope.from_bytes(data, expect=Root))

    def require_unexpired_root(self) -> None:
        """The trusted root is the newest there is: it must not have expired."""
        check_expiry(self._need_root().signed, self.now, roles.ROOT)

    def _set_root(self, env: Envelope[Root]) -> Verified[Root]:
        keys = RoleKeys(roles.ROOT, {}, env.signed.roles[roles.ROOT].threshold)
        self.root = Verified(env, keys, frozenset(env.signed.roles[roles.ROOT].keyids))
        self.timestamp = self.snapshot = None
        self.targets.clear()
        self.ignored.clear()
        self._unchecked = {roles.ROOT: env.data}
        return self.root

    def _need_root(self) -> Verified[Root]:
        if self.root is None:
            raise RoleError("tuf: no trusted root loaded")
        return self.root

    # -- timestamp and snapshot ------------------------------------------------------------------------
    def update_timestamp(self, data: bytes, *, previous: bytes | None = None) -> Verified[Timestamp]:
        """The timestamp: root's timestamp keys, no rollback from *previous* (when it still verifies)."""
        keys = RoleKeys.from_root(self._need_root().signed, roles.TIMESTAMP)
        env = Envelope.from_bytes(data, expect=Timestamp)
        signed_by = verify_signatures(env, keys)
        self._no_rollback(env, previous, keys, Timestamp)
        check_expiry(env.signed, self.now, roles.TIMESTAMP)
        self.timestamp = Verified(env, keys, frozenset(signed_by))
        return self.timestamp

    def use_timestamp(self, data: bytes) -> Verified[Timestamp]:
        """A previously trusted timestamp (offline readers): it must still verify and not be expired."""
        keys = RoleKeys.from_root(self._need_root().signed, roles.TIMESTAMP)
        env = Envelope.from_bytes(data, expect=Timestamp)
        signed_by = verify_signatures(env, keys)
        check_expiry(env.signed, self.now, roles.TIMESTAMP)
        self.timestamp = Verified(env, keys, frozenset(signed_by))
        return self.timestamp

    def snapshot_meta(self) -> FileMeta:
        """What the trusted timestamp says the snapshot file is (fetch it by this hash)."""
        if self.timestamp is None:
            raise RoleError("tuf: no trusted timestamp loaded")
        return self.timestamp.signed.meta[roles.SNAPSHOT]

    def update_snapshot(
        self, data: bytes, *, previous: bytes | None = None, require_all: bool = False
    ) -> Verified[Snapshot]:
        """The snapshot: matches the timestamp (if loaded), root's snapshot keys, no rollback, not expired.

        It must vouch for the files loaded before it: their hashes must match when it lists them; with
        *require_all* (the server checking an uploaded snapshot) it must list every one of them.
        """
        root = self._need_root()
        if self.timestamp is not None:
            check_hashes(data, self.timestamp.signed.meta[roles.SNAPSHOT], roles.SNAPSHOT, check_length=True)
        keys = RoleKeys.from_root(root.signed, roles.SNAPSHOT)
        env = Envelope.from_bytes(data, expect=Snapshot)
        signed_by = verify_signatures(env, keys)
        if previous is not None and previous != data:
            try:
                minimum: int | None = Envelope.from_bytes(previous, expect=Snapshot).signed.version
            except TufError:  # an unreadable copy is no rollback reference
                minimum = None
            if minimum is not None:
                check_version(env.signed, minimum, roles.SNAPSHOT)
        check_expiry(env.signed, self.now, roles.SNAPSHOT)
        for role, loaded in self._unchecked.items():
            meta = env.signed.meta.get(role)
            if meta is None:
                if require_all:
                    raise HashMismatchError(f"snapshot is missing metadata for {role}")
                continue
            check_hashes(loaded, meta, role)
        self._unchecked = {}
        self.snapshot = Verified(env, keys, frozenset(signed_by))
        return self.snapshot

    # -- targets and delegations -----------------------------------------------------------------------
    def listed(self, role: str) -> FileMeta | None:
        """The snapshot's entry for targets *role* (None: never published)."""
        if self.snapshot is None:
            raise RoleError("tuf: no trusted snapshot loaded")
        return self.snapshot.signed.meta.get(role)

    def role_keys(self, role: str) -> RoleKeys:
        """Who may sign targets *role*: root's targets keys, or the verified parent's delegation entry."""
        if role == roles.TARGETS:
            return RoleKeys.from_root(self._need_root().signed, roles.TARGETS)
        return delegated_role_keys(role, {name: v.signed for name, v in self.targets.items()})

    def update_targets(
        self, role: str, data: bytes, *, previous: bytes | None = None, ignorable: bool = False
    ) -> Verified[Targets] | None:
        """Targets *role*: matches the snapshot (when loaded), signed by its keys, no rollback, not expired.

        With *ignorable*, a delegation failing one of the :data:`IGNORABLE` checks is recorded in
        :attr:`ignored` and None is returned (its children are then never loaded); anything else raises.
        """
        try:
            if self.snapshot is not None:
                meta = self.snapshot.signed.meta.get(role)
                if meta is None:
                    raise RoleError(f"tuf: {role} is not listed in the snapshot")
                check_hashes(data, meta, role, check_length=True)
            env = Envelope.from_bytes(data, expect=Targets, role=role)
            keys = self.role_keys(role)
            signed_by = verify_signatures(env, keys)
            if previous is not None and previous != data:
                previous_env = Envelope.from_bytes(previous, expect=Targets, role=role)
                check_version(env.signed, previous_env.signed.version, role)
            check_expiry(env.signed, self.now, role)
        except IGNORABLE as e:
            if not ignorable or role == roles.TARGETS:
                raise
            self.ignored[role] = e
            return None
        verified = Verified(env, keys, frozenset(signed_by))
        self.targets[role] = verified
        if self.snapshot is None:
            self._unchecked[role] = data
        return verified

    def trust_stored_targets(self, role: str, data: bytes) -> Verified[Targets]:
        """A targets file the server itself validated when it was stored (a parent of an uploaded role).

        Only its delegations are used (to check its children); its own keys are not looked up again.
        """
        env = Envelope.from_bytes(data, expect=Targets, role=role)
        verified = Verified(env, RoleKeys(role, {}, 1), frozenset())
        self.targets[role] = verified
        self._unchecked[role] = data
        return verified

    def children(self, role: str) -> list[str]:
        """The delegations verified *role* lists, in its order (notary walks depth first, pre-order)."""
        verified = self.targets.get(role)
        return [] if verified is None else [d.name for d in verified.signed.delegations.roles]

    # -- helpers --------------------------------------------------------------------------------------
    def _no_rollback(
        self, env: Envelope[Any], previous: bytes | None, keys: RoleKeys, expect: type[Signed]
    ) -> None:
        """Rollback check against a previous copy that still verifies with today's keys.

        A previous copy signed by a key that root has since rotated away is no reference (notary drops it).
        """
        if previous is None:
            return
        try:
            old = Envelope.from_bytes(previous, expect=expect)
            verify_signatures(old, keys)
        except TufError:
            return
        check_version(env.signed, old.signed.version, expect.ROLE)
