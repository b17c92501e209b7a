"""Writing trust data: initialise a repository, add and remove signers, sign and revoke tags, rotate keys.

Every write first brings the cache up to date through :class:`~notar.client.updater.Updater` (so it
builds on verified data), signs the changed roles with the keys held in the trust directory, publishes
them in one atomic update, and verifies the result by updating again.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from notar.client.cache import TrustCache
from notar.client.errors import (
    ClientError,
    NotSignedError,
    PublishRejectedError,
    RepositoryNotFoundError,
    TrustServerError,
)
from notar.client.keys import KeySource
from notar.client.remote import TrustServer
from notar.client.updater import RELEASES, TrustedRepo, Updater
from notar.crypto import PrivateKey, PublicKey, Signer, make_root_certificate
from notar.encoding import GoTime
from notar.keystore import FileKeyStore
from notar.tuf import (
    DelegatedRole,
    Envelope,
    FileMeta,
    Role,
    Root,
    Targets,
    TrustPinning,
    TufError,
    default_expiry,
    new_root,
    new_snapshot,
    new_targets,
    roles,
)

__all__ = ["Repository", "SignResult"]

log = logging.getLogger("notar.client")


@dataclass(frozen=True, slots=True)
class SignResult:
    roles: list[str]
    initialized: bool


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
    ) -> None:
        self.gun = gun
        self.server = server
        self.cache = cache
        self.keys = keys  # the trust directory: where new root/targets keys are stored
        self.signing_keys: KeySource = signing_keys if signing_keys is not None else keys
        self.clock = clock
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
        """(signer, key ID to write) for every listed key whose private key is in the trust directory."""
        out: list[tuple[Signer, str]] = []
        for kid in key_ids:
            pub = keys.get(kid)
            canonical = pub.canonical_key_id if pub is not None else kid
            if canonical not in self.signing_keys:
                continue
            private, _role = self.signing_keys.get(canonical)
            out.append((private, kid))
        return out

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
        """Sign every changed targets body (version + 1, fresh expiry) and publish them in one update."""
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
        except PublishRejectedError as e:
            if "newer version" in str(e):
                raise PublishRejectedError(
                    f"{self.gun} changed on the trust server while we were signing; run the command again"
                ) from e
            raise
        # The verifying refresh below checks every file against the new snapshot anyway; seeding the cache
        # with the targets files we just uploaded spares downloading them again (root is never seeded: the
        # cached root is the trust anchor).
        self.cache.store(self.gun, {role: env.data for role, env in envelopes.items()})
        return self.refresh()

    def _editable(self, repo: TrustedRepo, role: str) -> Targets:
        env = repo.targets.get(role)
        if env is not None:
            return copy.deepcopy(env.signed)
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
    def initialize(self) -> TrustedRepo:
        root, targets = self._initial()
        return self._publish(None, root=root, changed={roles.TARGETS: targets})

    def add_signer(self, name: str, public_keys: Sequence[PublicKey]) -> bool:
        """Add *name* (``targets/<name>`` and its keys in ``targets/releases``). True if the repo was created."""
        if not public_keys:
            raise ClientError("a signer needs at least one public key")
        repo = self.refresh_or_none()
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
            for key in public_keys:
                top.delegations.keys[key.key_id] = key
                if key.key_id not in entry.keyids:
                    entry.keyids.append(key.key_id)
        self._publish(repo, root=root, changed={roles.TARGETS: top})
        return repo is None

    def remove_signer(self, name: str, *, force: bool = False) -> None:
        """Remove ``targets/<name>`` and its keys from ``targets/releases`` (really: docker's is a no-op)."""
        repo = self.refresh()
        top = self._editable(repo, roles.TARGETS)
        role = f"targets/{name}"
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
                        f"{name} is the last signer of targets/releases in {self.gun}: nobody could sign releases "
                        "any more. Use --force to remove it anyway."
                    )
                releases.keyids_null = True
        in_use = {kid for r in top.delegations.roles for kid in r.keyids}
        top.delegations.keys = {k: v for k, v in top.delegations.keys.items() if k in in_use}
        self._publish(repo, changed={roles.TARGETS: top})

    def sign(self, targets: Mapping[str, FileMeta], *, initialize: bool = True) -> SignResult:
        """Sign several tags in one update, into every role docker would sign them into.

        A repository without trust data is initialised first (as ``docker push`` does) unless
        *initialize* is false, which makes it an error instead.
        """
        repo = self.refresh_or_none() if initialize else self.refresh()
        initialized = False
        if repo is None:
            repo = self.initialize()
            initialized = True
        changed: dict[str, Targets] = {}
        for tag, meta in targets.items():
            for role in self._signable_roles(repo, tag):
                body = changed.get(role) or self._editable(repo, role)
                body.targets[tag] = meta
                changed[role] = body
        self._publish(repo, changed=changed)
        return SignResult(sorted(changed), initialized)

    def revoke(self, tags: Sequence[str] | None) -> list[str]:
        """Remove *tags* (None: every signed tag) from the roles this user can sign; returns what was removed."""
        repo = self.refresh()
        top = repo.targets[roles.TARGETS].signed
        candidate_roles = (
            [r.name for r in top.delegations.roles if self._held(r.keyids, top.delegations.keys)]
            if top.delegations.roles
            else [roles.TARGETS]
        )
        changed: dict[str, Targets] = {}
        removed: set[str] = set()
        for role in candidate_roles:
            if role not in repo.targets:
                continue
            body = self._editable(repo, role)
            names = list(body.targets) if tags is None else [t for t in tags if t in body.targets]
            for name in names:
                del body.targets[name]
                removed.add(name)
            if names:
                changed[role] = body
        if not changed:
            what = (
                "no signed tags to remove"
                if tags is None
                else f"no signature for {', '.join(tags)} that you can revoke"
            )
            raise NotSignedError(f"{what} in {self.gun}")
        self._publish(repo, changed=changed)
        return sorted(removed)

    def rotate_key(self, role: str, *, server_managed: bool = False) -> PublicKey:
        """New key for ``targets`` (local) or ``snapshot``/``timestamp`` (server-held); root is re-signed."""
        repo = self.refresh()
        now = self.clock()
        root = copy.deepcopy(repo.root.signed)
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
        root.keys[public.key_id] = public
        root.roles[role] = Role([public.key_id], 1)
        used = {kid for r in root.roles.values() for kid in r.keyids}
        root.keys = {k: v for k, v in root.keys.items() if k in used}
        root.version += 1
        root.expires = default_expiry(roles.ROOT, now)
        signers = self._held(repo.root.signed.roles[roles.ROOT].keyids, repo.root.signed.keys)
        if not signers:
            raise ClientError(f"the root key of {self.gun} is not in the trust directory")
        new_root_env = Envelope.sign(root, signers)
        changed: dict[str, Targets] = {}
        if role == roles.TARGETS:
            changed[roles.TARGETS] = self._editable(repo, roles.TARGETS)
            # the new key must be able to sign: the updated root is used by _publish
        self._publish(repo, root=new_root_env, changed=changed)
        return public

    def delete_remote(self) -> None:
        self.server.delete(self.gun)
        self.cache.clear(self.gun)
