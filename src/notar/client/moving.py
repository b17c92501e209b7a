"""Moving a repository's trust data between Notary v1 servers: ``notar import`` and ``notar export``.

Both keep what clients already trust: the same root key, the same targets and delegation files (byte for
byte, so the same signers and the same signatures), the root history, and versions that only go up.

* **Into notar** (:func:`move_repository` with a notar destination): the whole history is verified here
  from root version 1 (:func:`notar.tuf.verify_history`), then sent to notar's import endpoint with one new
  root version that lists the destination's timestamp key (and its snapshot key when the source server
  held the snapshot key), signed with the repository's root key from the trust directory. The destination
  verifies it all again and stores it in one transaction (:mod:`notar.server.importing`).
* **Into a Go notary-server** (no import endpoint; only its update API, which takes one root version more
  than it has): the root versions are replayed, 1 to N+1, each a copy of the newest root with the
  destination's keys, signed by the root keys the trust directory holds (the current one, and older ones
  it still has), so that a client whose cache holds any version signed by one of those keys walks to the
  newest. The targets and delegation files are uploaded as they are. The timestamp and snapshot versions
  are then brought past the source's (one empty update each), so no client that read the source sees a
  rollback.

Afterwards the destination is read as a client that cached the source would read it (its cache seeded
with the source's files), and every signed tag must resolve as it did: the move is proved, not assumed.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from notar.client.cache import MemoryCache
from notar.client.errors import (
    ClientError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    TrustDataInvalidError,
)
from notar.client.keys import KeySource, held_key_ids
from notar.client.remote import MAX_ROOT_BYTES, MAX_TIMESTAMP_BYTES, TrustServer
from notar.client.sources import MetadataNotFoundError, MetadataSource
from notar.client.updater import TrustedRepo, Updater
from notar.crypto import PublicKey, Signer
from notar.encoding import GoTime
from notar.tuf import (
    MAX_ROOT_VERSIONS,
    Envelope,
    FileMeta,
    HistoryError,
    RepositoryHistory,
    Root,
    Signed,
    Snapshot,
    Targets,
    Timestamp,
    TrustPinning,
    TufError,
    VerifiedHistory,
    new_snapshot,
    roles,
    root_with_keys,
    verify_history,
    verify_root,
)

__all__ = ["MoveError", "MoveReport", "fetch_history", "move_repository"]

log = logging.getLogger("notar.client")
#: At most this many bytes of trust data are downloaded for one repository (what fits, base64-encoded, in the
#: notar server's default 64 MiB upload limit).
MAX_HISTORY_BYTES = 48 * 1024 * 1024
#: At most this many empty updates bring a Go server's timestamp/snapshot versions past the source's.
MAX_REPLAY_UPDATES = 10_000
S = TypeVar("S", bound=Signed)


class MoveError(ClientError):
    """The repository cannot be moved (the message says why, and which step failed)."""


@dataclass
class MoveReport:
    """What a move did (or, with ``dry_run``, would do) for one repository."""

    gun: str
    source: str
    destination: str
    mode: str  # "import" (notar's endpoint) or "replay" (a Go notary-server's update API)
    dry_run: bool
    root_versions: int  # root versions carried (1..N)
    new_root_version: int  # the root version that moves the server-held keys
    versions: dict[str, int]  # role -> version at the source
    targets: int  # signed tags (docker's rule: targets/releases, then targets)
    delegations: list[str]
    ignored: dict[str, str]  # delegation -> why clients ignore it (carried as it is)
    snapshot_key: str  # "server" or "client": who holds the snapshot key
    rotated: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # role -> {"from": ids, "to": ids}
    stored: dict[str, int] = field(default_factory=dict)  # role -> version at the destination afterwards
    skipped: list[str] = field(default_factory=list)  # delegations not carried (replay only), with why

    def to_json(self) -> dict[str, object]:
        return {
            "gun": self.gun,
            "source": self.source,
            "destination": self.destination,
            "mode": self.mode,
            "dryRun": self.dry_run,
            "rootVersions": self.root_versions,
            "newRootVersion": self.new_root_version,
            "versions": self.versions,
            "signedTags": self.targets,
            "delegations": self.delegations,
            "ignoredDelegations": self.ignored,
            "snapshotKey": self.snapshot_key,
            "rotatedKeys": self.rotated,
            "stored": self.stored,
            "skipped": self.skipped,
        }


# -- reading a whole repository ------------------------------------------------------------------------
def fetch_history(server: MetadataSource, gun: str) -> RepositoryHistory:
    """Download every root version and the current files of *gun* (nothing is trusted yet: verify it with
    :func:`notar.tuf.verify_history`). Sizes are capped as a client caps them, and all of it together at
    :data:`MAX_HISTORY_BYTES`; files named by the timestamp and snapshot are fetched by their hash, each role
    once."""

    def parse(data: bytes, expect: type[S], step: str, role: str | None = None) -> Envelope[S]:
        try:
            return Envelope.from_bytes(data, expect=expect, role=role)
        except TufError as e:
            raise HistoryError(step, e) from e

    budget = MAX_HISTORY_BYTES

    def fetch(role: str, *, cap: int, checksum: str | None = None, version: int | None = None) -> bytes:
        nonlocal budget
        if budget <= 0:
            raise HistoryError(
                role, f"the repository is larger than the {MAX_HISTORY_BYTES} bytes an import carries"
            )
        data = server.get(gun, role, max_bytes=min(cap, budget), checksum=checksum, version=version)
        budget -= len(data)
        return data

    newest = fetch(roles.ROOT, cap=MAX_ROOT_BYTES)
    count = parse(newest, Root, "root").signed.version
    if not 1 <= count <= MAX_ROOT_VERSIONS:
        raise HistoryError("root", f"version {count} is beyond the {MAX_ROOT_VERSIONS} versions notar walks")
    roots = [fetch(roles.ROOT, cap=MAX_ROOT_BYTES, version=v) for v in range(1, count)]
    roots.append(newest)
    timestamp = fetch(roles.TIMESTAMP, cap=MAX_TIMESTAMP_BYTES)
    snap_meta = parse(timestamp, Timestamp, roles.TIMESTAMP).signed.meta.get(roles.SNAPSHOT)
    if snap_meta is None or snap_meta.sha256_hex() is None:
        raise HistoryError(roles.TIMESTAMP, "it names no snapshot by sha256")
    snapshot = fetch(roles.SNAPSHOT, cap=snap_meta.length, checksum=snap_meta.sha256_hex())
    listed: dict[str, FileMeta] = parse(snapshot, Snapshot, roles.SNAPSHOT).signed.meta
    targets: dict[str, bytes] = {}
    queue = [roles.TARGETS]
    while queue:
        role = queue.pop(0)
        meta = listed.get(role)
        if meta is None or role in targets:
            continue
        sha = meta.sha256_hex()
        if sha is None:
            raise HistoryError(role, "the snapshot gives no sha256 for it")
        data = fetch(role, cap=meta.length, checksum=sha)
        targets[role] = data
        body: Targets = parse(data, Targets, role, role).signed
        queue[0:0] = [d.name for d in body.delegations.roles]
    return RepositoryHistory(gun, tuple(roots), timestamp, snapshot, targets)


def _verify(
    server: MetadataSource,
    gun: str,
    *,
    now: GoTime,
    pinning: TrustPinning | None,
    anchor: bytes | None,
) -> VerifiedHistory:
    try:
        return verify_history(fetch_history(server, gun), now=now, pinning=pinning, anchor=anchor)
    except HistoryError as e:
        raise TrustDataInvalidError(f"trust data for {gun} on {_where(server)} does not verify at {e}") from e


def _where(server: MetadataSource) -> str:
    return str(getattr(server, "url", server))


def _check_not_older(history: VerifiedHistory, trusted: Mapping[str, bytes], where: str) -> None:
    """No role of *history* may be older than the copy this client trusted before."""
    h = history.history
    current = {roles.TIMESTAMP: h.timestamp, roles.SNAPSHOT: h.snapshot, **h.targets}
    for role, data in current.items():
        mine = trusted.get(role)
        if mine is None:
            continue
        try:
            before: int = Envelope.from_bytes(mine).signed.version
            now: int = Envelope.from_bytes(data).signed.version
        except TufError:
            continue  # an unreadable cached copy is no reference
        if now < before:
            raise TrustDataInvalidError(
                f"trust data for {h.gun} on {where} does not verify at {role}: version {now} is lower than "
                f"version {before}, which this client trusted before (a rollback)"
            )


# -- keys ----------------------------------------------------------------------------------------------
def _held(root: Root, role: str, keys: KeySource) -> list[tuple[str, str]]:
    """(ID used in the root, canonical ID) of every key of *role* in *root* that *keys* can sign with."""
    return held_key_ids(root.roles[role].keyids, root.keys, keys)


def _require_root_key(history: VerifiedHistory, keys: KeySource) -> None:
    """MoveError unless *keys* hold a threshold of the newest root's keys (checked without decrypting)."""
    root = history.root.signed
    held = _held(root, roles.ROOT, keys)
    threshold = root.roles[roles.ROOT].threshold
    if len(held) < threshold:
        ids = ", ".join(k.canonical_key_id for k in (root.keys[i] for i in root.roles[roles.ROOT].keyids))
        raise MoveError(
            f"the root key of {history.history.gun} is not in the trust directory "
            f"(need {threshold} of: {ids}); it signs the root version that moves the server keys"
        )


def _root_signers(history: VerifiedHistory, keys: KeySource) -> list[tuple[Signer, str]]:
    """Signers for a new root version: the newest root's keys first, then every older root key the trust
    directory still holds (for clients whose cache is an older version)."""
    signers: list[tuple[Signer, str]] = []
    seen: set[str] = set()
    for data in reversed(history.history.roots):
        old = Envelope.from_bytes(data, expect=Root).signed
        for kid, canonical in _held(old, roles.ROOT, keys):
            if kid not in seen:
                seen.add(kid)
                signers.append((keys.get(canonical)[0], kid))
    return signers


def _snapshot_signers(root: Root, keys: KeySource) -> list[tuple[Signer, str]]:
    return [(keys.get(canonical)[0], kid) for kid, canonical in _held(root, roles.SNAPSHOT, keys)]


def _new_snapshot(previous: Snapshot, root: Envelope[Root], version: int, now: GoTime) -> Snapshot:
    snap = new_snapshot({}, now=now, version=version)
    snap.meta = {**previous.meta, roles.ROOT: root.file_meta()}
    return snap


# -- the move --------------------------------------------------------------------------------------------
def move_repository(
    gun: str,
    source: MetadataSource,
    destination: TrustServer,
    *,
    keys: KeySource,
    trusted: Mapping[str, bytes] | None = None,
    pinning: TrustPinning | None = None,
    clock: Callable[[], GoTime] = GoTime.now,
    dry_run: bool = False,
    force: bool = False,
) -> MoveReport:
    """Move *gun* from *source* to *destination* (see the module doc) and prove the result.

    *keys*: the trust directory's keys (the root key is needed; a client-held snapshot key too).
    *trusted*: role -> the file this client trusted before for *gun* (its cache): the source's root history
    must hold that root, and no role may be older than this client's copy (a rollback).
    *force*: replace trust data the destination already has (notar only, and only by a newer history).
    """
    now = clock()
    trusted = trusted or {}
    history = _verify(source, gun, now=now, pinning=pinning, anchor=trusted.get(roles.ROOT))
    _check_not_older(history, trusted, _where(source))
    root = history.root.signed
    state = history.state
    assert state.timestamp is not None and state.snapshot is not None
    client_snapshot = bool(_held(root, roles.SNAPSHOT, keys))
    _require_root_key(history, keys)
    mode = "import" if destination.accepts_import(gun) else "replay"
    exists = _exists(destination, gun)
    if exists and not (force and mode == "import"):
        hint = (
            "use --force to replace it with this newer history"
            if mode == "import"
            else ("delete it there first (notary delete GUN --remote), or export to a notar server")
        )
        raise RepositoryExistsError(f"{gun} already has trust data on {destination.url}: {hint}")
    repo = TrustedRepo(state)
    report = MoveReport(
        gun=gun,
        source=_where(source),
        destination=destination.url,
        mode=mode,
        dry_run=dry_run,
        root_versions=len(history.history.roots),
        new_root_version=len(history.history.roots) + 1,
        versions=dict(history.versions),
        targets=len(repo.signed_tags()),
        delegations=history.delegations,
        ignored={r: str(e) for r, e in history.ignored.items()},
        snapshot_key="client" if client_snapshot else "server",
    )
    if dry_run:
        return report
    server_keys = {roles.TIMESTAMP: destination.get_key(gun, roles.TIMESTAMP)}
    if not client_snapshot:
        server_keys[roles.SNAPSHOT] = destination.get_key(gun, roles.SNAPSHOT)
    for role, key in server_keys.items():
        report.rotated[role] = {"from": list(root.roles[role].keyids), "to": [key.key_id]}
    signers = _root_signers(history, keys)
    if mode == "import":
        report.stored = _import(history, destination, server_keys, signers, keys, now, force=force)
    else:
        report.stored, report.skipped = _replay(history, destination, server_keys, signers, keys, now)
    _prove(history, repo, destination, clock)
    return report


def _exists(server: TrustServer, gun: str) -> bool:
    try:
        server.get(gun, roles.ROOT, max_bytes=MAX_ROOT_BYTES)
    except (MetadataNotFoundError, RepositoryNotFoundError):
        return False
    return True


def _import(
    history: VerifiedHistory,
    destination: TrustServer,
    server_keys: Mapping[str, PublicKey],
    signers: list[tuple[Signer, str]],
    keys: KeySource,
    now: GoTime,
    *,
    force: bool,
) -> dict[str, int]:
    root = history.root
    new_root = Envelope.sign(
        root_with_keys(root.signed, server_keys, version=root.signed.version + 1, now=now), signers
    )
    _check_new_root(history, new_root, now)
    update = {roles.ROOT: new_root.data}
    snap_signers = _snapshot_signers(root.signed, keys)
    if snap_signers:
        assert history.state.snapshot is not None
        previous = history.state.snapshot.signed
        update[roles.SNAPSHOT] = Envelope.sign(
            _new_snapshot(previous, new_root, previous.version + 1, now), snap_signers
        ).data
    h = history.history

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    body = json.dumps(
        {
            "roots": [b64(d) for d in h.roots],
            "timestamp": b64(h.timestamp),
            "snapshot": b64(h.snapshot),
            "targets": {r: b64(d) for r, d in h.targets.items()},
            "update": {r: b64(d) for r, d in update.items()},
        }
    ).encode()
    answer = destination.import_repository(h.gun, body, force=force)
    versions = answer.get("versions")
    return {str(k): int(v) for k, v in versions.items()} if isinstance(versions, dict) else {}


def _check_new_root(history: VerifiedHistory, new_root: Envelope[Root], now: GoTime) -> None:
    """The destination would refuse a new root that does not verify: say why here, before anything moves."""
    try:
        verify_root(new_root, history.history.gun, trusted=history.root.signed, now=now)
    except TufError as e:
        raise MoveError(f"the new root of {history.history.gun} does not verify: {e}") from e


def _replay(
    history: VerifiedHistory,
    destination: TrustServer,
    server_keys: Mapping[str, PublicKey],
    signers: list[tuple[Signer, str]],
    keys: KeySource,
    now: GoTime,
) -> tuple[dict[str, int], list[str]]:
    """Rebuild the repository through a Go notary-server's update API (see the module doc)."""
    h = history.history
    state = history.state
    assert state.timestamp is not None and state.snapshot is not None
    source_root = history.root.signed
    newest = source_root.version + 1
    snap_signers = _snapshot_signers(source_root, keys)
    # checked before anything is sent: the replay is bounded
    needed = max(state.timestamp.signed.version, state.snapshot.signed.version) - newest
    if needed > MAX_REPLAY_UPDATES:
        raise MoveError(
            f"{h.gun} would need {needed} more updates on {destination.url} to bring its timestamp and "
            f"snapshot versions past the source's (at most {MAX_REPLAY_UPDATES} are sent); export it to a "
            "notar server instead"
        )
    # Files clients ignore (expired, under-signed delegations) are refused by a Go server's validation;
    # not carrying them changes nothing a client sees (the snapshot will not list them, so none fetches them).
    skipped = [f"{r} ({e})" for r, e in history.ignored.items()]
    carried = {r: d for r, d in h.targets.items() if r not in history.ignored}
    snapshot_version = state.snapshot.signed.version  # the next client snapshot is above the source's
    previous_snapshot = state.snapshot.signed
    timestamp_version = 0
    for version in range(1, newest + 1):
        root_env = Envelope.sign(root_with_keys(source_root, server_keys, version=version, now=now), signers)
        if version == newest:
            _check_new_root(history, root_env, now)
        files: dict[str, bytes] = {roles.ROOT: root_env.data}
        if version == 1:
            files.update(sorted(carried.items(), key=lambda item: roles.role_depth(item[0])))
        if snap_signers:
            snapshot_version += 1
            snap = _new_snapshot(previous_snapshot, root_env, snapshot_version, now)
            if version == 1:
                snap.meta = {
                    roles.ROOT: root_env.file_meta(),
                    **{r: FileMeta.from_data(d) for r, d in carried.items()},
                }
            previous_snapshot = snap
            files[roles.SNAPSHOT] = Envelope.sign(snap, snap_signers).data
        destination.publish(h.gun, files)
        timestamp_version += 1
    # every update makes one new timestamp (and snapshot, when the server holds its key)
    source_ts = state.timestamp.signed.version
    source_snap = state.snapshot.signed.version
    server_snapshot_version = newest
    while timestamp_version <= source_ts or (not snap_signers and server_snapshot_version <= source_snap):
        files = {}
        if snap_signers:
            snapshot_version += 1
            snap = _new_snapshot(previous_snapshot, root_env, snapshot_version, now)  # the newest root
            previous_snapshot = snap
            files[roles.SNAPSHOT] = Envelope.sign(snap, snap_signers).data
        destination.publish(h.gun, files)
        timestamp_version += 1
        server_snapshot_version += 1
    stored = {roles.ROOT: newest, roles.TIMESTAMP: timestamp_version}
    stored[roles.SNAPSHOT] = snapshot_version if snap_signers else server_snapshot_version
    return stored, skipped


def _prove(
    history: VerifiedHistory, before: TrustedRepo, destination: TrustServer, clock: Callable[[], GoTime]
) -> None:
    """Read the destination as a client that cached the source reads it; every tag must resolve the same."""
    h = history.history
    cache = MemoryCache()
    cache.store(
        h.gun,
        {
            roles.ROOT: h.roots[-1],
            roles.TIMESTAMP: h.timestamp,
            roles.SNAPSHOT: h.snapshot,
            **dict(h.targets),
        },
    )
    try:
        after = Updater(h.gun, destination, cache, clock=clock, offline=False).refresh()
    except (ClientError, TufError) as e:
        raise MoveError(
            f"{h.gun} was written to {destination.url}, but a client that trusted the old server "
            f"cannot read it there: {e}"
        ) from e
    old = {name: (m.meta.hashes, m.meta.length) for name, m in before.signed_tags().items()}
    new = {name: (m.meta.hashes, m.meta.length) for name, m in after.signed_tags().items()}
    if old != new:
        differ = sorted(set(old) ^ set(new) | {n for n in set(old) & set(new) if old[n] != new[n]})
        raise MoveError(
            f"{h.gun} was written to {destination.url}, but its signed tags differ there: {', '.join(differ[:5])}"
        )
