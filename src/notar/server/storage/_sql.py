"""The :class:`~notar.server.storage.MetaStore` on SQLite or PostgreSQL (synchronous SQLAlchemy, thread-safe).

Semantics follow notary-server's ``server/storage/sqldb.go``; the module docstring of the package lists the
places where we deliberately differ.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import and_, bindparam, delete, exc, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Select

from notar.server.storage._engine import (
    AUTOCOMMIT_READ_OPTION,
    WRITE_OPTION,
    create_engine,
    db_errors,
    describe_error,
    display_url,
    normalize_url,
    sqlite_file,
)
from notar.server.storage._migrate import verify_schema as _verify_schema
from notar.server.storage._models import ChangeRow, ServerKeyRow, TufFileRow
from notar.server.storage._probe import PG_PROBE_TIMEOUT_S, MetaProbe, PostgresProbe, SQLiteProbe
from notar.server.storage._types import (
    DEFAULT_CHANGES,
    MAX_CHANGES,
    Change,
    ChangeCategory,
    MetaUpdate,
    RepoSummary,
    StoredKey,
    StoredMeta,
)
from notar.server.storage.errors import (
    DuplicateKeyError,
    OldVersionError,
    RepositoryExistsError,
    StorageError,
    StorageUnavailableError,
)

__all__ = ["MAX_REPOSITORIES", "SQLMetaStore", "open_store"]

log = logging.getLogger(__name__)

TIMESTAMP = "timestamp"
MAX_REPOSITORIES = 1000  # list_repositories(limit=…) is capped here
_MAX_NAME = 255  # varchar(255): gun, role, key_id
_MAX_ALGORITHM = 50
_MAX_VERSION = 2**31 - 1  # SQL INTEGER
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# pg_advisory_xact_lock key taken just before a changefeed row is inserted, see update_many. b"notarchg".
_CHANGEFEED_LOCK_KEY = int.from_bytes(b"notarchg", "big", signed=True)

# The hot reads as Core statements built once (bind parameters; SQLAlchemy caches their compiled form), with
# exactly the columns of StoredMeta in its field order, so a row maps to a StoredMeta without the ORM.
_F = TufFileRow.__table__.c
_META_COLUMNS = (_F.gun, _F.role, _F.version, _F.data, _F.sha256, _F.created_at)
_GET_CURRENT = (
    select(*_META_COLUMNS)
    .where(_F.gun == bindparam("gun"), _F.role == bindparam("role"))
    .order_by(_F.version.desc())
    .limit(1)
)
_GET_CHECKSUM = (
    select(*_META_COLUMNS)
    .where(_F.gun == bindparam("gun"), _F.role == bindparam("role"), _F.sha256 == bindparam("sha256"))
    .order_by(_F.version.desc())
    .limit(1)
)
_GET_VERSION = select(*_META_COLUMNS).where(
    _F.gun == bindparam("gun"), _F.role == bindparam("role"), _F.version == bindparam("version")
)
_LATEST = (
    select(_F.role, func.max(_F.version).label("version"))
    .where(_F.gun == bindparam("gun"), _F.role.in_(bindparam("roles", expanding=True)))
    .group_by(_F.role)
    .subquery()
)
_GET_CURRENT_MANY = (
    select(*_META_COLUMNS)
    .join(_LATEST, and_(_F.role == _LATEST.c.role, _F.version == _LATEST.c.version))
    .where(_F.gun == bindparam("gun"))
)


class SQLMetaStore:
    """Trust metadata, the changefeed and server keys in one SQL database.

    ``url`` is ``sqlite:///PATH`` or ``postgresql://USER:PASS@HOST/DB`` (psycopg 3). Keyword arguments go to
    :func:`sqlalchemy.create_engine` (e.g. ``pool_size``). Unless ``verify_schema`` is false the constructor
    checks that the database was migrated to exactly the schema this notar knows, and raises
    :class:`SchemaError` otherwise; run :func:`migrate` first.

    Every method opens its own short transaction, so one instance is shared by all threads of a process
    (the async server calls it from a thread pool). Any database failure is raised as a
    :class:`StorageError`; connection problems as :class:`StorageUnavailableError`.
    """

    def __init__(self, url: str, *, verify_schema: bool = True, **engine_kwargs: Any) -> None:
        parsed = normalize_url(url)
        self.display_url = display_url(parsed)  # password masked
        self._engine = create_engine(parsed, **engine_kwargs)
        self._postgres = self._engine.dialect.name == "postgresql"
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        # Single-statement reads: Core on a pooled connection, no Session; on SQLite without BEGIN.
        self._reader = self._engine.execution_options(**{AUTOCOMMIT_READ_OPTION: True})
        self._write = sessionmaker(
            self._engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )
        self._sqlite_path = None if self._postgres else sqlite_file(parsed)
        self._probe: MetaProbe | None = None
        self._probe_lock = threading.Lock()
        if verify_schema:
            try:
                _verify_schema(self._engine)
            except BaseException:
                self._engine.dispose()
                raise

    def __repr__(self) -> str:
        return f"SQLMetaStore({self.display_url!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for diagnostics and tests; do not write through it)."""
        return self._engine

    # -- writes ------------------------------------------------------------------------------------------

    def update_many(self, gun: str, updates: Sequence[MetaUpdate]) -> None:
        """Store ``updates`` for ``gun`` in one transaction: all of them, or none.

        For each role, the lowest version in ``updates`` must be greater than every stored version of that
        role, and no (role, version) may appear twice; otherwise :class:`OldVersionError` and nothing is
        written. Each ``timestamp`` row also writes an ``update`` changefeed row in the same transaction.

        Concurrency (the argument for "no update lost or torn"). We run at the database's default
        isolation (READ COMMITTED on PostgreSQL), so two transactions can both pass the version check
        against the same stored state. What keeps them honest:

        * The UNIQUE (gun, role, version) index. Two writers of the same (gun, role, version) cannot both
          commit: the second INSERT waits for the first transaction and fails with a unique violation if it
          commits (-> OldVersionError, the whole batch is rolled back) or proceeds if it rolls back.
        * Writers of *different* versions of one role on the same stored state (T1 targets v3, T2 targets v4,
          stored v2) both pass the check and, on their own, could both commit. Like notary we accept that:
          both are newer than what was stored, and readers take the highest version. But the server never
          sends such a batch alone: every update it stores carries a new ``timestamp`` whose version is the
          stored timestamp's + 1, computed from the same state the batch was validated against. T1 and T2
          therefore insert the *same* timestamp version and the unique index lets only one commit. The
          timestamp version chain thus serialises all updates of one GUN: each committed batch was
          validated against the state left by the previous one (no lost update), and a loser leaves no row
          behind (no torn batch), which is what makes snapshot/timestamp always describe stored files.
        * Rows are inserted sorted by (role, version), so all writers take unique-index locks in the same
          order and two batches cannot deadlock on each other (a deadlock would surface as an error that is
          not OldVersionError).
        * SQLite serialises writers: a write transaction starts with BEGIN IMMEDIATE, so the check and the
          inserts run under the database's single write lock and see the latest committed state.
        * Changefeed IDs follow commit order: on PostgreSQL the changefeed row is inserted last, under a
          transaction-scoped advisory lock that is released at commit. Without it a transaction that took
          ID 10 could commit after one that took ID 11, and a reader paging "after 11" would never see 10.
        """
        _check_name("gun", gun)
        lowest: dict[str, int] = {}
        seen: set[tuple[str, int]] = set()
        for update in updates:
            _check_name("role", update.role)
            _check_version(update.version)
            if not isinstance(update.data, bytes):
                raise StorageError(f"{gun}: data of {update.role} must be bytes")
            if (update.role, update.version) in seen:
                raise OldVersionError(
                    f"{gun}: {update.role} version {update.version} appears twice in one update",
                    role=update.role,
                    version=update.version,
                )
            seen.add((update.role, update.version))
            lowest[update.role] = min(lowest.get(update.role, update.version), update.version)
        if not updates:
            return
        with db_errors(f"updating {gun}"):
            try:
                with self._write.begin() as session:
                    _check_versions(session, gun, lowest)
                    self._insert(session, gun, updates)
            except exc.IntegrityError as e:
                raise _integrity_error(gun, e) from e
        log.debug("stored %s: %s", gun, ", ".join(f"{u.role} v{u.version}" for u in updates))

    def import_many(self, gun: str, updates: Sequence[MetaUpdate], *, replace: bool = False) -> None:
        """Store a whole repository's files (several versions of a role allowed) in one transaction.

        The GUN must have no files, else :class:`RepositoryExistsError`; with *replace*, its files are
        deleted in the same transaction first (its server keys stay: the imported root names them), and a
        ``deletion`` changefeed row records that; *updates* must then be newer than what is stored, role by
        role (:class:`OldVersionError` otherwise, checked inside the transaction). Each ``timestamp`` row writes an ``update`` row, as in
        :meth:`update_many`. Two concurrent imports of one GUN cannot both commit (the unique index).
        """
        _check_name("gun", gun)
        seen: set[tuple[str, int]] = set()
        for update in updates:
            _check_name("role", update.role)
            _check_version(update.version)
            if (update.role, update.version) in seen:
                raise OldVersionError(
                    f"{gun}: {update.role} version {update.version} appears twice in one import",
                    role=update.role,
                    version=update.version,
                )
            if not isinstance(update.data, bytes):
                raise StorageError(f"{gun}: data of {update.role} must be bytes")
            seen.add((update.role, update.version))
        now = datetime.now(UTC)
        with db_errors(f"importing {gun}"):
            try:
                with self._write.begin() as session:
                    conn = session.connection()
                    if replace:
                        _check_replaced(session, gun, updates)
                        deleted = conn.execute(delete(TufFileRow).where(TufFileRow.gun == gun)).rowcount
                        if deleted:
                            self._lock_changefeed(session)
                            session.add(_change_row(gun, 0, None, "deletion", now))
                            session.flush()
                    else:
                        exists = session.execute(
                            select(TufFileRow.id).where(TufFileRow.gun == gun).limit(1)
                        ).first()
                        if exists is not None:
                            raise RepositoryExistsError(f"{gun} already has trust data")
                    self._insert(session, gun, updates)
            except exc.IntegrityError as e:
                raise _integrity_error(gun, e) from e
        log.debug("imported %s: %d files", gun, len(updates))

    def _insert(self, session: Session, gun: str, updates: Sequence[MetaUpdate]) -> None:
        """Insert file rows sorted by (role, version), and a changefeed row per timestamp (see update_many)."""
        now = datetime.now(UTC)
        ordered = sorted(updates, key=lambda u: (u.role, u.version))
        files = [
            TufFileRow(
                gun=gun,
                role=u.role,
                version=u.version,
                data=u.data,
                sha256=hashlib.sha256(u.data).hexdigest(),
                created_at=now,
                updated_at=now,
            )
            for u in ordered
        ]
        session.add_all(files)
        session.flush()
        stamps = [f for f in files if f.role == TIMESTAMP]
        if stamps:
            self._lock_changefeed(session)
            session.add_all(_change_row(gun, f.version, f.sha256, "update", now) for f in stamps)

    def delete(self, gun: str) -> bool:
        """Hard-delete every file and server key of exactly ``gun`` (not a prefix: ``a/b`` spares ``a/bc``).

        If files were deleted, a ``deletion`` changefeed row (version 0, no hash) is written in the same
        transaction. Returns whether anything was deleted.
        """
        now = datetime.now(UTC)
        with db_errors(f"deleting {gun}"), self._write.begin() as session:
            conn = session.connection()
            files = conn.execute(delete(TufFileRow).where(TufFileRow.gun == gun)).rowcount
            keys = conn.execute(delete(ServerKeyRow).where(ServerKeyRow.gun == gun)).rowcount
            if files:
                self._lock_changefeed(session)
                session.add(_change_row(gun, 0, None, "deletion", now))
        if files or keys:
            log.debug("deleted %s: %d files, %d server keys", gun, files, keys)
        return bool(files or keys)

    def add_key(self, key: StoredKey) -> None:
        """Store a server key. A key ID already stored for the GUN and role: :class:`DuplicateKeyError`."""
        if key.created_at.tzinfo is None or key.created_at.utcoffset() is None:
            raise ValueError("StoredKey.created_at must be an aware datetime")
        _check_name("gun", key.gun)
        _check_name("role", key.role)
        _check_name("key_id", key.key_id)
        _check_name("algorithm", key.algorithm, max_len=_MAX_ALGORITHM)
        with db_errors(f"storing a {key.role} key of {key.gun}"):
            try:
                with self._write.begin() as session:
                    session.add(
                        ServerKeyRow(
                            gun=key.gun,
                            role=key.role,
                            key_id=key.key_id,
                            algorithm=key.algorithm,
                            public=key.public,
                            private=key.private,
                            created_at=key.created_at,
                        )
                    )
            except exc.IntegrityError as e:
                if _is_unique_violation(e):
                    raise DuplicateKeyError(
                        f"{key.gun}: a {key.role} key with ID {key.key_id[:12]}… is already stored"
                    ) from e
                raise StorageError(f"storing a key of {key.gun}: {describe_error(e)}") from e

    # -- reads -------------------------------------------------------------------------------------------

    def get_current(self, gun: str, role: str) -> StoredMeta | None:
        return self._first(_GET_CURRENT, {"gun": gun, "role": role}, f"reading {gun} {role}")

    def get_current_many(self, gun: str, roles: Sequence[str]) -> dict[str, StoredMeta]:
        """The highest stored version of each role in ``roles`` that has one, in a single query."""
        wanted = sorted(set(roles))
        if not wanted:
            return {}
        with db_errors(f"reading {gun}"), self._reader.connect() as conn:
            rows = conn.execute(_GET_CURRENT_MANY, {"gun": gun, "roles": wanted}).all()
        return {row[1]: _meta_row(row) for row in rows}

    def get_checksum(self, gun: str, role: str, sha256: str) -> StoredMeta | None:
        """The version of ``role`` whose data hashes to ``sha256`` (hex, any case), or ``None``."""
        digest = sha256.lower()
        if not _SHA256_HEX.fullmatch(digest):
            return None
        params = {"gun": gun, "role": role, "sha256": digest}
        return self._first(_GET_CHECKSUM, params, f"reading {gun} {role} by checksum")

    def get_version(self, gun: str, role: str, version: int) -> StoredMeta | None:
        if not 0 <= version <= _MAX_VERSION:
            return None
        params = {"gun": gun, "role": role, "version": version}
        return self._first(_GET_VERSION, params, f"reading {gun} {role} version {version}")

    def get_changes(self, change_id: int, records: int, gun: str | None = None) -> list[Change]:
        """A page of the changefeed, always ordered oldest to newest (notary's ``GetChanges``).

        ``records`` > 0: up to that many changes after ``change_id`` (exclusive; 0 = from the beginning).
        ``records`` < 0: up to ``-records`` changes before ``change_id``. A negative ``change_id`` means
        "from the newest, backwards" whatever the sign of ``records`` (and, as in notary, so does
        ``change_id`` 0 with negative ``records``). ``records`` 0 means 100; ``|records|`` is capped at
        1000. ``gun`` (if not empty) keeps only that GUN's changes.
        """
        if records == 0:
            records = DEFAULT_CHANGES
        backwards = change_id < 0 or records < 0
        count = min(abs(records), MAX_CHANGES)
        stmt = select(ChangeRow)
        if gun:
            stmt = stmt.where(ChangeRow.gun == gun)
        if backwards:
            if change_id > 0:
                stmt = stmt.where(ChangeRow.id < change_id)
            stmt = stmt.order_by(ChangeRow.id.desc())
        else:
            stmt = stmt.where(ChangeRow.id > change_id).order_by(ChangeRow.id.asc())
        with db_errors("reading the changefeed"), self._read() as session:
            changes = [_change(row) for row in session.scalars(stmt.limit(count))]
        if backwards:
            changes.reverse()
        return changes

    def list_repositories(self, query: str = "", limit: int = 100) -> list[RepoSummary]:
        """GUNs with trust data whose name contains ``query`` (case-insensitive, literally: ``%`` and ``_``
        are not wildcards), sorted by name, at most ``limit`` (capped at 1000).

        ``updated_at`` is when the newest timestamp was stored, i.e. the last update of the GUN.
        """
        limit = min(limit, MAX_REPOSITORIES)
        if limit <= 0 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in query):
            return []  # no GUN has control characters (PostgreSQL text cannot even hold NUL)
        version = func.max(TufFileRow.version)
        updated = func.max(TufFileRow.created_at)
        stmt = select(TufFileRow.gun, updated, version).where(TufFileRow.role == TIMESTAMP)
        if query:
            stmt = stmt.where(TufFileRow.gun.icontains(query, autoescape=True))
        stmt = stmt.group_by(TufFileRow.gun).order_by(TufFileRow.gun).limit(limit)
        with db_errors("listing repositories"), self._read() as session:
            rows = session.execute(stmt).all()
        return [RepoSummary(gun=g, updated_at=_aware(u), timestamp_version=v) for g, u, v in rows]

    def get_keys(self, gun: str, role: str) -> list[StoredKey]:
        """The server keys of ``gun`` and ``role``, newest first."""
        stmt = (
            select(ServerKeyRow)
            .where(ServerKeyRow.gun == gun, ServerKeyRow.role == role)
            .order_by(ServerKeyRow.created_at.desc(), ServerKeyRow.id.desc())
        )
        with db_errors(f"reading {role} keys of {gun}"), self._read() as session:
            return [_key(row) for row in session.scalars(stmt)]

    def probe(self) -> MetaProbe | None:
        """This store's :class:`~notar.server.storage._probe.MetaProbe` (made on first use, one per store),
        or ``None`` where there is none (SQLite URI filenames)."""
        with self._probe_lock:
            if self._probe is None:
                if self._postgres:
                    _, params = self._engine.dialect.create_connect_args(self._engine.url)
                    params.pop("context", None)  # SQLAlchemy's adapters; the probe reads plain columns
                    params.setdefault("connect_timeout", int(PG_PROBE_TIMEOUT_S))
                    params.setdefault("application_name", "notar")
                    self._probe = PostgresProbe(dict(params))
                elif self._sqlite_path is not None:
                    self._probe = SQLiteProbe(self._sqlite_path)
            return self._probe

    # -- lifecycle -------------------------------------------------------------------------------------

    def check_health(self) -> None:
        """Raise :class:`StorageUnavailableError` unless the database answers and has our tables."""
        try:
            with db_errors("health check"), self._engine.connect() as conn:
                conn.execute(select(TufFileRow.id).limit(1)).all()
        except StorageUnavailableError:
            raise
        except StorageError as e:
            raise StorageUnavailableError(str(e)) from e

    def close(self) -> None:
        """Close all pooled connections. The store may be used again afterwards (it reconnects)."""
        if self._probe is not None:
            self._probe.close()
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------------------

    def _first(self, stmt: Select[Any], params: dict[str, Any], what: str) -> StoredMeta | None:
        with db_errors(what), self._reader.connect() as conn:
            row = conn.execute(stmt, params).first()
        return None if row is None else _meta_row(row)

    def _lock_changefeed(self, session: Session) -> None:
        if self._postgres:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGEFEED_LOCK_KEY})


def open_store(url: str, **engine_kwargs: Any) -> SQLMetaStore:
    """Open the store at ``url`` after checking its schema revision (see :class:`SQLMetaStore`)."""
    return SQLMetaStore(url, **engine_kwargs)


def _check_versions(session: Session, gun: str, lowest: Mapping[str, int]) -> None:
    """OldVersionError unless each role's lowest new version is above every stored version of it."""
    stmt = (
        select(TufFileRow.role, func.max(TufFileRow.version))
        .where(TufFileRow.gun == gun, TufFileRow.role.in_(sorted(lowest)))
        .group_by(TufFileRow.role)
    )
    for role, stored in sorted(session.execute(stmt).all()):
        if stored is not None and lowest[role] <= stored:
            raise OldVersionError(
                f"{gun}: {role} version {lowest[role]} is not newer than the stored version {stored}",
                role=role,
                version=lowest[role],
            )


_REPLACED_STRICTLY = ("root", "snapshot", TIMESTAMP)


def _check_replaced(session: Session, gun: str, updates: Sequence[MetaUpdate]) -> None:
    """OldVersionError unless *updates* are newer, role by role, than what the GUN stores now (checked in
    the replacing transaction, so that an update stored after the caller looked is never wiped out):
    root, snapshot and timestamp strictly, every other role stored at least as new."""
    newest: dict[str, int] = {}
    for u in updates:
        newest[u.role] = max(newest.get(u.role, 0), u.version)
    stmt = (
        select(TufFileRow.role, func.max(TufFileRow.version))
        .where(TufFileRow.gun == gun)
        .group_by(TufFileRow.role)
    )
    for role, stored in sorted(session.execute(stmt).all()):
        new = newest.get(role)
        if new is None:
            continue  # a role the import does not carry (a delegation no longer delegated)
        if stored > new or (role in _REPLACED_STRICTLY and stored == new):
            raise OldVersionError(
                f"{gun}: {role} version {stored} is stored, the replacement's is {new}",
                role=role,
                version=new,
            )


def _change_row(gun: str, version: int, sha256: str | None, category: str, now: datetime) -> ChangeRow:
    return ChangeRow(gun=gun, version=version, sha256=sha256, category=category, created_at=now)


def _integrity_error(gun: str, e: exc.IntegrityError) -> StorageError:
    if _is_unique_violation(e):
        return OldVersionError(f"{gun}: a concurrent update stored one of these versions first")
    return StorageError(f"updating {gun}: the database refused the update ({describe_error(e)})")


def _is_unique_violation(e: exc.IntegrityError) -> bool:
    orig = e.orig
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return bool(sqlstate == "23505")  # unique_violation
    name = getattr(orig, "sqlite_errorname", None)  # sqlite3, Python >= 3.11
    if name is not None:
        return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
    return "UNIQUE constraint failed" in str(orig)


def _check_name(kind: str, value: str, *, max_len: int = _MAX_NAME) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len:
        size = len(value) if isinstance(value, str) else type(value).__name__
        raise StorageError(f"{kind} must be a string of 1 to {max_len} characters (got {size})")


def _check_version(version: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= _MAX_VERSION:
        raise StorageError(f"version must be an integer from 0 to {_MAX_VERSION} (got {version!r})")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _meta_row(row: Sequence[Any]) -> StoredMeta:
    """A StoredMeta from a row of ``_META_COLUMNS`` (gun, role, version, data, sha256, created_at)."""
    gun, role, version, data, sha256, created_at = row
    return StoredMeta(gun, role, version, bytes(data), sha256, _aware(created_at))


def _change(row: ChangeRow) -> Change:
    return Change(
        id=row.id,
        created_at=_aware(row.created_at),
        gun=row.gun,
        version=row.version,
        sha256=row.sha256 or "",
        category=cast(ChangeCategory, row.category),
    )


def _key(row: ServerKeyRow) -> StoredKey:
    return StoredKey(
        gun=row.gun,
        role=row.role,
        key_id=row.key_id,
        algorithm=row.algorithm,
        public=bytes(row.public),
        private=bytes(row.private),
        created_at=_aware(row.created_at),
    )
