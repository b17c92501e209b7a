"""Validation of an uploaded update, with notary-server's rules (§3 of the protocol notes).

All checks come from :mod:`notar.tuf`; this module only decides the order, what is loaded from storage,
and how failures are reported (notary's ``ErrBadRoot`` / ``ErrBadTargets`` / ``ErrBadSnapshot`` /
``ErrBadHierarchy`` / ``ErrValidation`` names, which Go clients decode).

Decision (docs/adr/0002): snapshot and timestamp hashes are computed over the **stored bytes** of each
file, not over a re-serialisation as Go notary-server does. The bytes we hash are exactly the bytes we
serve, so a client that fetches by hash always finds the file, even for uploads that are not byte-exact
Go encodings (which break a Go server silently).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from notar.crypto import Signer
from notar.encoding import GoTime
from notar.server.errors import ServerError, validation_detail
from notar.server.keys import KeyService
from notar.server.storage import MetaUpdate, StoredMeta
from notar.tuf import (
    Envelope,
    FileMeta,
    Root,
    Snapshot,
    Timestamp,
    TrustedSet,
    TufError,
    check_targets_content,
    default_expiry,
    roles,
)

__all__ = ["StoredState", "UpdatePlan", "bad_update", "sign_snapshot", "sign_timestamp", "validate_update"]


MAX_VERSION = 2**31 - 1
T = TypeVar("T")


class StoredState(Protocol):
    """What validation reads of the stored state (a :class:`MetaStore`, or an import's staged files)."""

    def get_current(self, gun: str, role: str) -> StoredMeta | None: ...

    def get_current_many(self, gun: str, roles: Sequence[str]) -> dict[str, StoredMeta]: ...


def bad_update(name: str, message: str, **extra: str) -> ServerError:
    """400 INVALID_UPDATE with notary's serialised validation error."""
    return ServerError("INVALID_UPDATE", validation_detail(name, message, **extra))


@dataclass
class UpdatePlan:
    """What one accepted POST writes: every role's new version, timestamp last."""

    updates: list[MetaUpdate] = field(default_factory=list)

    def add(self, role: str, env: Envelope[Any]) -> None:
        version = env.signed.version
        if not 0 <= version <= MAX_VERSION:  # what storage (SQL INTEGER) holds; notary's is an int too
            name = {roles.ROOT: "ErrBadRoot", roles.SNAPSHOT: "ErrBadSnapshot"}.get(role, "ErrBadTargets")
            raise bad_update(name, f"{role} version {version} is out of range (at most {MAX_VERSION})")
        self.updates.append(MetaUpdate(role=role, version=version, data=env.data))


def _parse_stored(row: StoredMeta, expect: type[Any], role: str | None = None) -> Envelope[Any]:
    return _trust_stored(lambda data: Envelope.from_bytes(data, expect=expect, role=role), row.data)


def _trust_stored(load: Callable[[bytes], T], data: bytes) -> T:
    """Load stored bytes; they were validated on the way in, so a failure here means corruption."""
    try:
        return load(data)
    except TufError as e:
        raise ServerError("UNKNOWN") from e


def sign_snapshot(
    *,
    gun: str,
    root: Envelope[Root],
    files: Mapping[str, bytes],
    previous: Envelope[Snapshot] | None,
    signer: Signer,
    now: GoTime,
) -> Envelope[Snapshot]:
    """A new server snapshot: the previous one's meta, updated with *files* (role -> stored bytes)."""
    meta = dict(previous.signed.meta) if previous is not None else {}
    meta[roles.ROOT] = FileMeta.from_data(root.data)
    for role, data in files.items():
        meta[role] = FileMeta.from_data(data)
    body = Snapshot(
        meta=meta,
        version=previous.signed.version + 1 if previous is not None else 1,
        expires=default_expiry(roles.SNAPSHOT, now),
    )
    return Envelope.sign(body, [signer])


def sign_timestamp(
    *, snapshot: Envelope[Snapshot], previous: Envelope[Timestamp] | None, signer: Signer, now: GoTime
) -> Envelope[Timestamp]:
    body = Timestamp(
        meta={roles.SNAPSHOT: FileMeta.from_data(snapshot.data)},
        version=previous.signed.version + 1 if previous is not None else 1,
        expires=default_expiry(roles.TIMESTAMP, now),
    )
    return Envelope.sign(body, [signer])


def validate_update(
    gun: str,
    uploads: Mapping[str, bytes],
    *,
    store: StoredState,
    keys: KeyService,
    now: Callable[[], GoTime],
) -> UpdatePlan:
    """Check an update (role -> uploaded bytes, timestamp already dropped) and plan what to store."""
    clock = now()
    targets_roles = sorted(
        (r for r in uploads if r == roles.TARGETS or roles.is_delegation(r)), key=roles.role_depth
    )
    wanted = [roles.ROOT, roles.SNAPSHOT, roles.TIMESTAMP, roles.TARGETS]
    stored = store.get_current_many(gun, wanted)
    plan = UpdatePlan()

    state = TrustedSet(gun, clock)

    # 1-3: root
    prev_root = stored.get(roles.ROOT)
    if roles.ROOT in uploads:
        try:
            new_root = Envelope.from_bytes(uploads[roles.ROOT], expect=Root)
        except TufError as e:
            raise bad_update("ErrBadRoot", str(e)) from e
        current = _parse_stored(prev_root, Root).signed.version if prev_root is not None else 1
        if new_root.signed.version not in (current, current + 1):
            raise bad_update(
                "ErrBadRoot",
                "Root modifications must increment the version. "
                f"Current {current}, new {new_root.signed.version}",
            )
        try:
            if prev_root is None:
                state.load_first_root(new_root.data)  # trusted on first use: own certificates, not expired
            else:
                state.trust_stored_root(prev_root.data)
                state.update_root(new_root.data)  # signed by the stored root's certificates too
        except TufError as e:
            raise bad_update("ErrBadRoot", str(e)) from e
        plan.add(roles.ROOT, new_root)
    elif prev_root is None:
        raise bad_update("ErrValidation", "no pre-existing root and no root provided in update.")
    else:
        _trust_stored(state.trust_stored_root, prev_root.data)
    root = state.root
    assert root is not None

    # 4: targets and delegations, parents first; missing ancestors come from storage
    for role in targets_roles:
        for depth in range(1, roles.role_depth(role)):
            ancestor = "/".join(role.split("/")[:depth])
            if ancestor not in state.targets:
                row = store.get_current(gun, ancestor)
                if row is None:
                    raise bad_update("ErrBadTargets", f"tuf: invalid role {role}. delegation does not exist")
                _trust_stored(functools.partial(state.trust_stored_targets, ancestor), row.data)
        try:
            verified = state.update_targets(role, uploads[role])
            assert verified is not None  # not ignorable: failures raise
            check_targets_content(verified.signed, verified.keys)
        except TufError as e:
            raise bad_update("ErrBadTargets", str(e)) from e
        plan.add(role, verified.envelope)

    # 5: snapshot, uploaded (it must vouch for root and every targets file above) or generated
    prev_snapshot = _parse_stored(stored[roles.SNAPSHOT], Snapshot) if roles.SNAPSHOT in stored else None
    if roles.SNAPSHOT in uploads:
        try:
            snapshot = state.update_snapshot(uploads[roles.SNAPSHOT], require_all=True).envelope
        except TufError as e:
            raise bad_update("ErrBadSnapshot", str(e)) from e
    else:
        signer = keys.signer(gun, roles.SNAPSHOT, root.signed.roles[roles.SNAPSHOT].keyids)
        if signer is None:
            raise bad_update(
                "ErrBadHierarchy",
                "no snapshot was included in update and server does not hold current snapshot key "
                "for repository",
                Missing="snapshot",
            )
        if prev_snapshot is None and roles.TARGETS not in uploads and roles.TARGETS not in stored:
            raise bad_update(
                "ErrBadHierarchy", "no targets were included in the first update", Missing="targets"
            )
        files = {role: uploads[role] for role in targets_roles}
        if prev_snapshot is None and roles.TARGETS not in files:
            files[roles.TARGETS] = stored[roles.TARGETS].data
        snapshot = sign_snapshot(
            gun=gun, root=root.envelope, files=files, previous=prev_snapshot, signer=signer, now=clock
        )
    plan.add(roles.SNAPSHOT, snapshot)

    # 6: timestamp, always ours
    ts_signer = keys.signer(gun, roles.TIMESTAMP, root.signed.roles[roles.TIMESTAMP].keyids)
    if ts_signer is None:
        raise bad_update("ErrBadRoot", "no timestamp keys exist on the server")
    prev_ts = _parse_stored(stored[roles.TIMESTAMP], Timestamp) if roles.TIMESTAMP in stored else None
    plan.add(
        roles.TIMESTAMP, sign_timestamp(snapshot=snapshot, previous=prev_ts, signer=ts_signer, now=clock)
    )
    return plan
