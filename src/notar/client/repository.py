"""Writing trust data: initialise a repository, add and remove signers, sign and revoke tags, rotate keys.

Every write first brings the cache up to date through :class:`~notar.client.updater.Updater` (so it
builds on verified data), signs the changed roles with the keys held in the trust directory, publishes
them in one atomic update, and verifies the result by updating again.

Each write is a function of the refreshed trust data (:meth:`Repository._transact`): refresh, compute the
changed roles, sign, publish. When another publisher's update of the same repository was stored first, the
trust server refuses ours with ``VERSION``; the write is then applied again to the newly refreshed state
(never the old bodies re-sent), after a jittered exponential backoff, for at most
:data:`~notar.client.retry.DEFAULT_RETRY_SECONDS` (:mod:`notar.client.retry`). What the command means is
fixed before the first attempt (the digest a tag is signed to, a new key), so a retry signs the same intent
into newer data and never something else.

Size: every write (initialise, signers, sign, revoke, rotate) is a small function of the trusted
state, next to the one refresh/sign/publish/retry loop that runs them all; they read best side by side.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from notar.client.cache import TrustCache
from notar.client.errors import (
    ClientError,
    NotSignedError,
    PublishRejectedError,
    RepositoryNotFoundError,
    TrustServerError,
    VersionConflictError,
)
from notar.client.keys import KeySource, held_key_ids, trust_dir_keys
from notar.client.remote import TrustServer
from notar.client.retry import PublishConflictError, RetryPolicy
from notar.client.updater import RELEASES, TrustedRepo, Updater
from notar.crypto import PrivateKey, PublicKey, Signer, make_root_certificate
from notar.encoding import GoTime
from notar.keystore import FileKeyStore
from notar.tuf import (
    DelegatedRole,
    Envelope,
    FileMeta,
    Root,
    Targets,
    TrustPinning,
    TufError,
    default_expiry,
    new_root,
    new_snapshot,
    new_targets,
    roles,
    root_with_keys,
)

__all__ = ["Repository", "SignResult"]

log = logging.getLogger("notar.client")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SignResult:
    """What :meth:`Repository.sign` did: the roles the tags were signed into, whether it created the repo."""

    roles: list[str]
    initialized: bool


@dataclass(slots=True)
class _Update:
    """What one attempt of a write publishes: new bodies of the changed targets roles (fresh copies, signed
    with version + 1 by :meth:`Repository._publish`) and, for root changes, the new signed root."""

    changed: dict[str, Targets] = field(default_factory=dict)
    root: Envelope[Root] | None = None


class _LostRace(Exception):
    """The trust server refused an update because another one was stored first (``VERSION``)."""

    def __init__(self, error: PublishRejectedError) -> None:
        super().__init__(str(error))
        self.error = error


_Change = Callable[[TrustedRepo | None], tuple[_Update | None, T]]
"""One write as a function of the current trust data (None: the repository does not exist yet): what to
publish (None: nothing) and what to return to the caller."""


class Repository:
    """One GUN on one trust server, with the local trust directory's keys and cache."""

    def __init__(
        self,
        gun: str,
        *,
        server: TrustServer,
        cache: TrustCache,
        keys: FileKeyStore,
        signing_keys: KeySource | None = None,
        pinning: TrustPinning | None = None,
        clock: Callable[[], GoTime] = GoTime.now,
        retry: RetryPolicy | None = None,
    ) -> None:
        """*retry*: how long, and how, a publish that lost a race is re-applied (default: 30 s budget)."""
        self.gun = gun
        self.server = server
        self.cache = cache
        self.keys = keys  # the trust directory: where new root/targets keys are stored
        # default: its key files, then the keys its KMS references (private/<key ID>.kms) point to
        self.signing_keys: KeySource = signing_keys if signing_keys is not None else trust_dir_keys(keys)
        self.clock = clock
        self.retry = retry if retry is not None else RetryPolicy()
        self.updater = Updater(gun, server, cache, pinning=pinning, clock=clock)

    # -- reading ------------------------------------------------------------------------------------------
    def refresh(self) -> TrustedRepo:
        return self.updater.refresh()

    def refresh_or_none(self) -> TrustedRepo | None:
        try:
            return self.refresh()
        except RepositoryNotFoundError:
            return None

    # -- keys -----------------------------------------------------------------------------------------------
    def _held(self, key_ids: Iterable[str], keys: Mapping[str, PublicKey]) -> list[tuple[Signer, str]]:
        """(signer, key ID to write) for every listed key we can sign with (a key file in the trust
        directory, a KMS key it references, or whatever :attr:`signing_keys` holds)."""
        return [
            (self.signing_keys.get(canonical)[0], kid)
            for kid, canonical in held_key_ids(key_ids, keys, self.signing_keys)
        ]

    def _root_key(self) -> PrivateKey:
        """docker's choice: the first existing root key (sorted by ID), or a new one."""
        for info in sorted(self.keys.list(), key=lambda i: i.key_id):
            if info.role == roles.ROOT:
                return self.keys.get(info.key_id)[0]
        key = PrivateKey.generate()
        self.keys.add(key, role=roles.ROOT)
        return key

    # -- building blocks --------------------------------------------------------------------------------
    def _initial(self) -> tuple[Envelope[Root], Targets]:
        """A new repository the way docker makes one: local root and targets keys, server-held snapshot."""
        now = self.clock()
        root_key = self._root_key()
        targets_key = PrivateKey.generate()
        timestamp = self.server.get_key(self.gun, roles.TIMESTAMP)
        snapshot = self.server.get_key(self.gun, roles.SNAPSHOT)
        self.keys.add(targets_key, role=roles.TARGETS, gun=self.gun)
        cert = make_root_certificate(root_key, self.gun, now=datetime.now(UTC))
        body = new_root(
            {
                "root": [cert],
                "targets": [targets_key.public_key],
                "snapshot": [snapshot],
                "timestamp": [timestamp],
            },
            now=now,
        )
        root = Envelope.sign(body, [(root_key, cert.key_id)])
        targets = new_targets(now=now)
        targets.version = 0  # bumped to 1 when signed
        return root, targets

    def _publish(
        self,
        repo: TrustedRepo | None,
        *,
        root: Envelope[Root] | None = None,
        changed: Mapping[str, Targets],
    ) -> TrustedRepo:
        """Sign every changed targets body (version + 1, fresh expiry) and publish them in one update.

        Returns the trust data refreshed (and so verified) after the update. A refusal because another
        update was stored first is :class:`_LostRace`, which only :meth:`_transact` (the only caller) sees."""
        now = self.clock()
        root_env = root or (repo.root if repo else None)
        if root_env is None:
            raise ClientError("internal error: publishing without a root")
        files: dict[str, bytes] = {}
        envelopes: dict[str, Envelope[Targets]] = {}
        if root is not None:
            files[roles.ROOT] = root.data
        trusted = {r: e.signed for r, e in repo.targets.items()} if repo else {}
        for role in sorted(changed, key=roles.role_depth):
            body = changed[role]
            body.version += 1
            body.expires = default_expiry(role, now)
            if role == roles.TARGETS:
                keys, key_ids = root_env.signed.keys, root_env.signed.roles[roles.TARGETS].keyids
            else:
                parent = changed.get(roles.parent_role(role)) or trusted.get(roles.parent_role(role))
                entry = parent.delegations.role(role) if parent else None
                if parent is None or entry is None:
                    raise ClientError(f"{role} is not a delegation of {self.gun}")
                keys, key_ids = parent.delegations.keys, entry.keyids
            signers = self._held(key_ids, keys)
            if not signers:
                raise ClientError(f"no signing key for {role} of {self.gun} in the trust directory")
            env = Envelope.sign(body, signers)
            envelopes[role] = env
            files[role] = env.data
        # a client-held snapshot key (notary-initialised repositories) means we sign the snapshot too
        snap_ids = root_env.signed.roles[roles.SNAPSHOT].keyids
        snap_signers = self._held(snap_ids, root_env.signed.keys)
        if snap_signers:
            previous = repo.snapshot.signed if repo else None
            meta = dict(previous.meta) if previous else {}
            meta[roles.ROOT] = root_env.file_meta()
            for role, env in envelopes.items():
                meta[role] = env.file_meta()
            snap = new_snapshot({}, now=now, version=(previous.version + 1) if previous else 1)
            snap.meta = meta
            files[roles.SNAPSHOT] = Envelope.sign(snap, snap_signers).data
        try:
            self.server.publish(self.gun, files)
        except VersionConflictError as e:
            raise _LostRace(e) from e
        # The verifying refresh below checks every file against the new snapshot anyway; seeding the cache
        # with the targets files we just uploaded spares downloading them again (root is never seeded: the
        # cached root is the trust anchor).
        self.cache.store(self.gun, {role: env.data for role, env in envelopes.items()})
        return self.refresh()

    def _transact(
        self, change: _Change[T], *, missing_ok: bool = False, fresh: TrustedRepo | None = None
    ) -> tuple[T, TrustedRepo | None]:
        """Apply *change* to the current trust data and publish it; after a lost race, again to the new data.

        Each attempt refreshes (the first may use *fresh*, just refreshed by the caller), calls *change* on
        the verified state (None if the repository does not exist and *missing_ok*), signs and publishes
        what it returns. When the server refuses the update because another one was stored first
        (``VERSION``), the next attempt starts over from a refresh after :attr:`retry`'s backoff, until
        the time budget is spent (:class:`~notar.client.retry.PublishConflictError`, saying how many
        attempts). Every other error ends the write at once. Returns *change*'s result of the attempt that
        was stored, and the trust data after it.
        """
        started = self.retry.clock()
        attempt = 0
        while True:
            attempt += 1
            if fresh is not None:
                repo: TrustedRepo | None = fresh
                fresh = None
            else:
                repo = self.refresh_or_none() if missing_ok else self.refresh()
            update, result = change(repo)
            if update is None:
                return result, repo
            try:
                after = self._publish(repo, root=update.root, changed=update.changed)
            except _LostRace as lost:
                delay = self.retry.delay(attempt, started=started)
                if delay is None:
                    elapsed = self.retry.clock() - started
                    raise PublishConflictError(self.gun, attempt, elapsed) from lost.error
                log.info(
                    "%s: version conflict on publish attempt %d (another update was stored first); "
                    "re-applying to the new state in %.2f s",
                    self.gun,
                    attempt,
                    delay,
                )
                self.retry.sleep(delay)
                continue
            if attempt > 1:
                log.info("%s: published on attempt %d", self.gun, attempt)
            return result, after

    def _editable(self, repo: TrustedRepo, role: str) -> Targets:
        env = repo.targets.get(role)
        if env is not None:
            # a copy to edit: the targets map and delegations are changed, file metas never are (shared)
            body = env.signed
            return dataclasses.replace(
                body,
                targets=dict(body.targets),
                delegations=copy.deepcopy(body.delegations),
                unrecognized=dict(body.unrecognized),
            )
        body = new_targets(now=self.clock(), role=role)
        body.version = self._stored_version(repo, role)
        return body

    def _stored_version(self, repo: TrustedRepo, role: str) -> int:
        """The version of a role file the server still stores although it no longer verifies (a removed and
        re-added delegation): a new file must continue after it. Only the number is used, not the content."""
        meta = repo.snapshot.signed.meta.get(role)
        sha = meta.sha256_hex() if meta is not None else None
        if meta is None or sha is None:
            return 0
        try:
            data = self.server.get(self.gun, role, checksum=sha, max_bytes=meta.length)
            return Envelope.from_bytes(data, expect=Targets, role=role).signed.version
        except (TufError, TrustServerError):
            return 0

    def _signable_roles(self, repo: TrustedRepo, tag: str) -> list[str]:
        """docker's AddToAllSignableRoles: direct delegations we hold a key for; else ``targets``."""
        top = repo.targets[roles.TARGETS].signed
        if not top.delegations.roles:
            return [roles.TARGETS]
        out = []
        for entry in top.delegations.roles:
            if not entry.matches(tag):
                continue
            if self._held(entry.keyids, top.delegations.keys):
                out.append(entry.name)
        if not out:
            raise ClientError(
                f"no valid signing keys for delegation roles of {self.gun}: add a signer with "
                "`notar signer add` and load its key with `notar key load`"
            )
        return out

    # -- operations -------------------------------------------------------------------------------------
    # Each write below is a function of the refreshed trust data, run by _transact (again after a lost
    # race). Whatever the command means is settled before: tags and digests, names and keys, new key pairs.

    def _create(self, repo: TrustedRepo | None) -> tuple[_Update | None, bool]:
        """The change that creates the repository if it does not exist (True), else nothing (False)."""
        if repo is not None:
            return None, False
        root, targets = self._initial()
        return _Update({roles.TARGETS: targets}, root), True

    def initialize(self) -> TrustedRepo:
        """Create the repository (root, targets; snapshot and timestamp by the server) unless it exists.

        If another client created it meanwhile, that repository is the result (trusted on first use)."""
        _created, repo = self._transact(self._create, missing_ok=True)
        assert repo is not None
        return repo

    def add_signer(self, name: str, public_keys: Sequence[PublicKey]) -> bool:
        """Add *name* (``targets/<name>`` and its keys in ``targets/releases``). True if the repo was created."""
        if not public_keys:
            raise ClientError("a signer needs at least one public key")
        keys = list(public_keys)

        def change(repo: TrustedRepo | None) -> tuple[_Update | None, bool]:
            root: Envelope[Root] | None = None
            if repo is None:
                root, top = self._initial()
            else:
                top = self._editable(repo, roles.TARGETS)
            for role in (f"targets/{name}", RELEASES):
                entry = top.delegations.role(role)
                if entry is None:
                    entry = DelegatedRole(role, [], 1, [""])
                    top.delegations.roles.append(entry)
                for key in keys:
                    top.delegations.keys[key.key_id] = key
                    if key.key_id not in entry.keyids:
                        entry.keyids.append(key.key_id)
            return _Update({roles.TARGETS: top}, root), repo is None

        created, _ = self._transact(change, missing_ok=True)
        return created

    def remove_signer(self, name: str, *, force: bool = False) -> None:
        """Remove ``targets/<name>`` and its keys from ``targets/releases`` (really: docker's is a no-op)."""
        role = f"targets/{name}"

        def change(repo: TrustedRepo | None) -> tuple[_Update | None, None]:
            assert repo is not None
            top = self._editable(repo, roles.TARGETS)
            entry = top.delegations.role(role)
            if entry is None:
                raise ClientError(f"{name} is not a signer of {self.gun}")
            top.delegations.roles = [r for r in top.delegations.roles if r.name != role]
            still_used = {kid for r in top.delegations.roles if r.name != RELEASES for kid in r.keyids}
            releases = top.delegations.role(RELEASES)
            if releases is not None:
                releases.keyids = [k for k in releases.keyids if k not in entry.keyids or k in still_used]
                if not releases.keyids:
                    if not force:
                        raise ClientError(
                            f"{name} is the last signer of targets/releases in {self.gun}: nobody could sign "
                            "releases any more. Use --force to remove it anyway."
                        )
                    releases.keyids_null = True
            in_use = {kid for r in top.delegations.roles for kid in r.keyids}
            top.delegations.keys = {k: v for k, v in top.delegations.keys.items() if k in in_use}
            return _Update({roles.TARGETS: top}), None

        self._transact(change)

    def sign(self, targets: Mapping[str, FileMeta], *, initialize: bool = True) -> SignResult:
        """Sign several tags in one update, into every role docker would sign them into.

        A repository without trust data is initialised first (as ``docker push`` does) unless
        *initialize* is false, which makes it an error instead. Each tag is signed to the size and digest
        given here, also when the update is re-applied after a lost race; the roles are chosen from the
        trust data of the attempt that is stored.
        """
        wanted = dict(targets)  # file metas are never changed in place: sharing them is safe
        initialized = False
        fresh: TrustedRepo | None = None
        if initialize:
            initialized, fresh = self._transact(self._create, missing_ok=True)

        def change(repo: TrustedRepo | None) -> tuple[_Update | None, list[str]]:
            assert repo is not None
            changed: dict[str, Targets] = {}
            for tag, meta in wanted.items():
                for role in self._signable_roles(repo, tag):
                    body = changed.get(role) or self._editable(repo, role)
                    body.targets[tag] = meta
                    changed[role] = body
            return _Update(changed), sorted(changed)

        signed_roles, _ = self._transact(change, fresh=fresh)
        return SignResult(signed_roles, initialized)

    def revoke(self, tags: Sequence[str] | None) -> list[str]:
        """Remove *tags* (None: every signed tag) from the roles this user can sign; returns what was removed.

        Which tags go is settled by the first attempt: *tags*, or with None the tags signed then (a tag
        signed by someone else while we retry is not revoked unasked). After a lost race those are removed
        from the new state; one removed by someone else meanwhile is no longer reported, and if none is left
        that is :class:`NotSignedError`, as running the command again would say.
        """
        wanted: list[str] | None = None if tags is None else list(tags)

        def change(repo: TrustedRepo | None) -> tuple[_Update | None, list[str]]:
            nonlocal wanted
            assert repo is not None
            top = repo.targets[roles.TARGETS].signed
            candidate_roles = [
                role
                for role in (
                    [r.name for r in top.delegations.roles if self._held(r.keyids, top.delegations.keys)]
                    if top.delegations.roles
                    else [roles.TARGETS]
                )
                if role in repo.targets
            ]
            if wanted is None:
                wanted = sorted({t for role in candidate_roles for t in repo.targets[role].signed.targets})
            changed: dict[str, Targets] = {}
            removed: set[str] = set()
            for role in candidate_roles:
                body = self._editable(repo, role)
                names = [t for t in wanted if t in body.targets]
                for name in names:
                    del body.targets[name]
                    removed.add(name)
                if names:
                    changed[role] = body
            if not changed:
                what = (
                    "no signed tags to remove"
                    if tags is None
                    else f"no signature for {', '.join(wanted)} that you can revoke"
                )
                raise NotSignedError(f"{what} in {self.gun}")
            return _Update(changed), sorted(removed)

        removed, _ = self._transact(change)
        return removed

    def rotate_key(self, role: str, *, server_managed: bool = False) -> PublicKey:
        """New key for ``targets`` (local) or ``snapshot``/``timestamp`` (server-held); root is re-signed.

        The new key is made once (locally, or by the server); a retry after a lost race puts that same key
        into the root of the new state."""
        fresh = self.refresh()
        if role == roles.TARGETS and not server_managed:
            new_key = PrivateKey.generate()
            self.keys.add(new_key, role=roles.TARGETS, gun=self.gun)
            public = new_key.public_key
        elif role in (roles.SNAPSHOT, roles.TIMESTAMP) and (server_managed or role == roles.TIMESTAMP):
            public = self.server.get_key(self.gun, role, rotate=True)
        else:
            raise ClientError(
                f"cannot rotate the {role} key this way: rotate targets, or snapshot/timestamp with --server-managed"
            )

        def change(repo: TrustedRepo | None) -> tuple[_Update | None, None]:
            assert repo is not None
            root = root_with_keys(
                repo.root.signed, {role: public}, version=repo.root.signed.version + 1, now=self.clock()
            )
            signers = self._held(repo.root.signed.roles[roles.ROOT].keyids, repo.root.signed.keys)
            if not signers:
                raise ClientError(f"the root key of {self.gun} is not in the trust directory")
            update = _Update(root=Envelope.sign(root, signers))
            if role == roles.TARGETS:
                # re-signed with the new key: the updated root is the one _publish signs targets for
                update.changed[roles.TARGETS] = self._editable(repo, roles.TARGETS)
            return update, None

        self._transact(change, fresh=fresh)
        return public

    def delete_remote(self) -> None:
        self.server.delete(self.gun)
        self.cache.clear(self.gun)
