"""The trust service: what the HTTP handlers call. Storage, validation and server signing meet here."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from notar.crypto import PublicKey
from notar.encoding import GoTime
from notar.server.errors import ServerError
from notar.server.importing import ImportResult, plan_import
from notar.server.keys import KeyService, KeyServiceError
from notar.server.storage import (
    Change,
    MetaProbe,
    MetaStore,
    MetaUpdate,
    OldVersionError,
    RepositoryExistsError,
    SQLMetaStore,
    StorageError,
    StorageUnavailableError,
    StoredMeta,
)
from notar.server.validation import sign_snapshot, sign_timestamp, validate_update
from notar.tuf import Envelope, RepositoryHistory, Root, Snapshot, Timestamp, TufError, roles

__all__ = ["Metadata", "TrustService"]

T = TypeVar("T")

log = logging.getLogger("notar.server")


@dataclass(frozen=True, slots=True)
class Metadata:
    """Bytes to serve and when they were written.

    Also what decides that these are the bytes to serve, so that a copy of them can be checked cheaply
    later (see :mod:`notar.server.storage._probe`):

    * ``basis``: (version, sha256) of the stored row this answer follows from: the row read (by hash, by
      version, or the role's current one), or, for the current snapshot, the current timestamp (which names
      the snapshot by hash). While the same lookup still finds that row, and until ``fresh_until``, the
      same call would answer the same bytes. ``None``: the answer must not be reused (an expired
      timestamp/snapshot the server could not re-sign).
    * ``fresh_until``: for the timestamp and the snapshot, the earlier of their expiries; past it the server
      re-signs them on read. ``None`` for every other role (they never change on read).
    """

    data: bytes
    modified: datetime | None
    basis: tuple[int, str] | None = None
    fresh_until: GoTime | None = None


class _ExpiryCache:
    """sha256 of a timestamp/snapshot file -> (expires, sha256 of the snapshot it names).

    Keyed by content hash, so it can never go stale and needs no coordination between processes.
    """

    def __init__(self, size: int = 8192) -> None:
        self._data: OrderedDict[str, tuple[GoTime, str | None]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def peek(self, sha256: str) -> tuple[GoTime, str | None] | None:
        """What is cached for the file hashing to ``sha256``, without reading the file."""
        with self._lock:
            return self._data.get(sha256)

    def get(
        self, row: StoredMeta, parse: Callable[[bytes], tuple[GoTime, str | None]]
    ) -> tuple[GoTime, str | None]:
        with self._lock:
            hit = self._data.get(row.sha256)
        if hit is not None:
            return hit
        value = parse(row.data)
        with self._lock:
            self._data[row.sha256] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


def _timestamp_info(data: bytes) -> tuple[GoTime, str | None]:
    ts = Envelope.from_bytes(data, expect=Timestamp)
    return ts.signed.expires, ts.signed.meta[roles.SNAPSHOT].sha256_hex()


def _snapshot_info(data: bytes) -> tuple[GoTime, str | None]:
    return Envelope.from_bytes(data, expect=Snapshot).signed.expires, None


class TrustService:
    """Reads, publishes and deletes trust data for GUNs, with notary-server's behaviour."""

    def __init__(
        self, store: MetaStore, keys: KeyService, *, clock: Callable[[], GoTime] = GoTime.now
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self._wall_clock = clock == GoTime.now  # the real clock: now_ns() needs no GoTime
        self._expiry = _ExpiryCache()
        #: The store's probe (cheap "which row is current" questions from async code), if it has one.
        self.probe: MetaProbe | None = store.probe() if isinstance(store, SQLMetaStore) else None

    def now_ns(self) -> int:
        """The service clock's current instant in Unix nanoseconds (compare with ``fresh_until``)."""
        if self._wall_clock:
            return time.time_ns()
        now = self.clock()
        return now.unix * 1_000_000_000 + now.nanos

    # -- reads ----------------------------------------------------------------------------------------
    def current(self, gun: str, role: str) -> Metadata:
        if role == roles.TIMESTAMP or role == roles.SNAPSHOT:
            ts, snap, fresh_until = self._fresh_timestamp(gun, need_snapshot=role == roles.SNAPSHOT)
            basis = (ts.version, ts.sha256) if fresh_until is not None else None
            if role == roles.TIMESTAMP:
                return Metadata(ts.data, ts.created_at, basis, fresh_until)
            if snap is None:  # not reached: need_snapshot always reads it
                raise ServerError("METADATA_NOT_FOUND", {})
            return Metadata(snap.data, snap.created_at, basis, fresh_until)
        row = self._guard(lambda: self.store.get_current(gun, role))
        if row is None:
            raise ServerError("METADATA_NOT_FOUND", {})
        return Metadata(row.data, row.created_at, (row.version, row.sha256))

    def by_checksum(self, gun: str, role: str, checksum: str) -> Metadata:
        row = (
            self._guard(lambda: self.store.get_checksum(gun, role, checksum)) if len(checksum) == 64 else None
        )
        if row is None:
            raise ServerError("METADATA_NOT_FOUND", {})
        return Metadata(row.data, row.created_at, (row.version, row.sha256))

    def by_version(self, gun: str, role: str, version: int) -> Metadata:
        row = self._guard(lambda: self.store.get_version(gun, role, version))
        if row is None:
            raise ServerError("METADATA_NOT_FOUND", {})
        return Metadata(row.data, row.created_at, (row.version, row.sha256))

    def _fresh_timestamp(
        self, gun: str, *, need_snapshot: bool
    ) -> tuple[StoredMeta, StoredMeta | None, GoTime | None]:
        """The current timestamp and the snapshot it names, re-signed first if either expired (§3.8), and the
        earlier of their expiries (``None`` if they are served expired because re-signing failed).

        Fast path (GET timestamp.json): when the snapshot is not wanted and its expiry is already known by
        its hash (which the timestamp gives), the snapshot row is not read and ``None`` comes back in its
        place. The cache is keyed by content hash, so a known expiry is always the right one; a snapshot
        that expired, or one never seen, is read as before (and re-signed if needed).
        """
        ts_row = self._guard(lambda: self.store.get_current(gun, roles.TIMESTAMP))
        if ts_row is None:
            raise ServerError("METADATA_NOT_FOUND", {})
        ts_expires, snap_hash = self._expiry.get(ts_row, _timestamp_info)
        if not need_snapshot and snap_hash:
            known = self._expiry.peek(snap_hash)
            if known is not None:
                now = self.clock()
                if ts_expires >= now and known[0] >= now:
                    return ts_row, None, min(ts_expires, known[0])
        snap_row = self._guard(lambda: self.store.get_checksum(gun, roles.SNAPSHOT, snap_hash or ""))
        if snap_row is None:
            raise ServerError("METADATA_NOT_FOUND", {})
        snap_expires, _ = self._expiry.get(snap_row, _snapshot_info)
        now = self.clock()
        if ts_expires >= now and snap_expires >= now:
            return ts_row, snap_row, min(ts_expires, snap_expires)
        try:
            new_ts, new_snap = self._resign(
                gun, ts_row, snap_row, resign_snapshot=snap_expires < now, now=now
            )
        except (TufError, KeyServiceError, ServerError) as e:
            # Serve what we have; clients report the expiry clearly. (notary answers 500 here.)
            log.error("cannot re-sign expired timestamp/snapshot of %s: %s", gun, e)
            return ts_row, snap_row, None
        ts_expires, _ = self._expiry.get(new_ts, _timestamp_info)
        snap_expires, _ = self._expiry.get(new_snap, _snapshot_info)
        return new_ts, new_snap, min(ts_expires, snap_expires)

    def _resign(
        self, gun: str, ts_row: StoredMeta, snap_row: StoredMeta, *, resign_snapshot: bool, now: GoTime
    ) -> tuple[StoredMeta, StoredMeta]:
        root_row = self._guard(lambda: self.store.get_current(gun, roles.ROOT))
        if root_row is None:
            raise ServerError("METADATA_NOT_FOUND", {})
        root = Envelope.from_bytes(root_row.data, expect=Root)
        updates = []
        snapshot = Envelope.from_bytes(snap_row.data, expect=Snapshot)
        if resign_snapshot:
            if root.signed.is_expired(now):
                raise ServerError("UNKNOWN", "root has expired")
            signer = self.keys.signer(gun, roles.SNAPSHOT, root.signed.roles[roles.SNAPSHOT].keyids)
            if signer is None:
                raise ServerError("UNKNOWN", "snapshot key is not held by the server")
            snapshot = sign_snapshot(gun=gun, root=root, files={}, previous=snapshot, signer=signer, now=now)
            updates.append(MetaUpdate(roles.SNAPSHOT, snapshot.signed.version, snapshot.data))
        ts_signer = self.keys.signer(gun, roles.TIMESTAMP, root.signed.roles[roles.TIMESTAMP].keyids)
        if ts_signer is None:
            raise ServerError("UNKNOWN", "timestamp key is not held by the server")
        previous = Envelope.from_bytes(ts_row.data, expect=Timestamp)
        ts = sign_timestamp(snapshot=snapshot, previous=previous, signer=ts_signer, now=now)
        updates.append(MetaUpdate(roles.TIMESTAMP, ts.signed.version, ts.data))
        try:
            self._guard(lambda: self.store.update_many(gun, updates))
        except ServerError as e:
            if e.code != "VERSION":
                raise
            # another request or process re-signed first: serve what it stored
        new_ts = self._guard(lambda: self.store.get_current(gun, roles.TIMESTAMP))
        assert new_ts is not None
        _, snap_hash = self._expiry.get(new_ts, _timestamp_info)
        new_snap = self._guard(lambda: self.store.get_checksum(gun, roles.SNAPSHOT, snap_hash or ""))
        assert new_snap is not None
        return new_ts, new_snap

    # -- writes ---------------------------------------------------------------------------------------
    def publish(self, gun: str, uploads: Mapping[str, bytes]) -> None:
        plan = validate_update(gun, uploads, store=self.store, keys=self.keys, now=self.clock)
        self._guard(lambda: self.store.update_many(gun, plan.updates), failure="UPDATING")

    def import_repository(
        self, gun: str, history: RepositoryHistory, update: Mapping[str, bytes], *, force: bool = False
    ) -> ImportResult:
        """Store a repository moved from another server, with its whole root history (see
        :mod:`notar.server.importing`): all of it in one transaction, or nothing."""
        result = plan_import(gun, history, update, keys=self.keys, now=self.clock)

        def store() -> None:
            try:
                self.store.import_many(gun, result.updates, replace=force)
            except RepositoryExistsError as e:
                raise ServerError(
                    "REPOSITORY_EXISTS", f"{gun} already has trust data here; import with force to replace it"
                ) from e
            except OldVersionError as e:  # replacing: what is stored is as new as the import, or newer
                raise ServerError(
                    "REPOSITORY_EXISTS", f"{e}: clients that read this server would see a rollback"
                ) from e

        self._guard(store, failure="UPDATING")
        return result

    def delete(self, gun: str) -> None:
        self._guard(lambda: self.store.delete(gun))

    def key(self, gun: str, role: str, *, rotate: bool = False) -> PublicKey:
        try:
            if rotate:
                return self.keys.rotate(gun, role)
            root_ids = None
            row = self._guard(lambda: self.store.get_current(gun, roles.ROOT))
            if row is not None:
                root = Envelope.from_bytes(row.data, expect=Root)
                root_ids = root.signed.roles[role].keyids
            return self.keys.get_or_create(gun, role, root_key_ids=root_ids)
        except KeyServiceError as e:
            log.error("key service failure for %s %s: %s", gun, role, e)
            raise ServerError("UNKNOWN") from e

    def changes(self, change_id: int, records: int, gun: str | None) -> list[Change]:
        return self._guard(lambda: self.store.get_changes(change_id, records, gun))

    # -- helpers --------------------------------------------------------------------------------------
    @staticmethod
    def _guard(fn: Callable[[], T], *, failure: str = "UNKNOWN") -> T:
        """Run a storage call; storage errors become the HTTP errors notary answers with."""
        try:
            return fn()
        except OldVersionError as e:
            raise ServerError("VERSION", {}) from e
        except StorageUnavailableError as e:
            log.error("storage unavailable: %s", e)
            raise ServerError("UNAVAILABLE") from e
        except StorageError as e:
            log.error("storage failure: %s", e)
            raise ServerError(failure) from e
