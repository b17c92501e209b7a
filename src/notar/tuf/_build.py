"""Building new metadata with notary's defaults."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from notar.crypto import PublicKey
from notar.encoding import GoTime
from notar.tuf import roles
from notar.tuf._model import Envelope, FileMeta, Role, Root, Snapshot, Targets, Timestamp

__all__ = [
    "DEFAULT_EXPIRY_DAYS",
    "default_expiry",
    "new_root",
    "new_snapshot",
    "new_targets",
    "new_timestamp",
    "root_with_keys",
]

#: notary's ``NotaryDefaultExpiries`` (a year is 365 days); not the TUF library defaults.
DEFAULT_EXPIRY_DAYS: Mapping[str, int] = {
    roles.ROOT: 3650,
    roles.TARGETS: 1095,
    roles.SNAPSHOT: 1095,
    roles.TIMESTAMP: 14,
}


def default_expiry(role: str, now: GoTime) -> GoTime:
    """When metadata of *role* signed at *now* expires (delegations expire like ``targets``)."""
    base = role if role in DEFAULT_EXPIRY_DAYS else roles.TARGETS
    return now.utc().add(days=DEFAULT_EXPIRY_DAYS[base])


def new_root(
    role_keys: Mapping[str, Sequence[PublicKey]],
    *,
    now: GoTime,
    version: int = 1,
    thresholds: Mapping[str, int] | None = None,
    extra_keys: Sequence[PublicKey] = (),
) -> Root:
    """A root listing *role_keys* for the four base roles (root keys should be certificate keys).

    *extra_keys* are kept in ``keys`` without a role (notary keeps old root keys there after rotation).
    """
    missing = [r for r in roles.BASE_ROLES if not role_keys.get(r)]
    if missing:
        raise ValueError(f"new root needs keys for {', '.join(missing)}")
    keys = {k.key_id: k for k in extra_keys}
    role_map = {}
    for role in roles.BASE_ROLES:
        ids = []
        for k in role_keys[role]:
            keys[k.key_id] = k
            ids.append(k.key_id)
        role_map[role] = Role(ids, (thresholds or {}).get(role, 1))
    return Root(keys=keys, roles=role_map, version=version, expires=default_expiry(roles.ROOT, now))


def new_targets(*, now: GoTime, role: str = roles.TARGETS, version: int = 1) -> Targets:
    """An empty targets (or delegation) body."""
    return Targets(version=version, expires=default_expiry(role, now))


def new_snapshot(
    files: Mapping[str, Envelope[Root] | Envelope[Targets]], *, now: GoTime, version: int = 1
) -> Snapshot:
    """A snapshot recording length, sha256 and sha512 of each role's file bytes."""
    meta: dict[str, FileMeta] = {name: env.file_meta() for name, env in files.items()}
    return Snapshot(meta=meta, version=version, expires=default_expiry(roles.SNAPSHOT, now))


def new_timestamp(snapshot: Envelope[Snapshot], *, now: GoTime, version: int = 1) -> Timestamp:
    """A timestamp recording the snapshot file."""
    return Timestamp(
        meta={roles.SNAPSHOT: snapshot.file_meta()},
        version=version,
        expires=default_expiry(roles.TIMESTAMP, now),
    )


def root_with_keys(root: Root, role_keys: Mapping[str, PublicKey], *, version: int, now: GoTime) -> Root:
    """A copy of *root* at *version* where each role of *role_keys* has that one key (threshold 1), keys no
    role lists any more are dropped, and the expiry is the default from *now* (a key rotation, or a move
    of the server-held keys to another server)."""
    body = copy.deepcopy(root)
    for role, key in role_keys.items():
        body.keys[key.key_id] = key
        body.roles[role] = Role([key.key_id], 1)
    used = {kid for r in body.roles.values() for kid in r.keyids}
    body.keys = {k: v for k, v in body.keys.items() if k in used}
    body.version = version
    body.expires = default_expiry(roles.ROOT, now)
    return body
