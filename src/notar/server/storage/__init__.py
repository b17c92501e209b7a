"""notar-server's metadata store: TUF files, the changefeed and server-held keys, in SQLite or PostgreSQL.

Usage::

    migrate("sqlite:////var/lib/notar/notar.db")  # Alembic "upgrade head"; idempotent
    store = open_store("sqlite:////var/lib/notar/notar.db")  # refuses an un-migrated or newer schema
    store.update_many(gun, [MetaUpdate("targets", 2, data), MetaUpdate("timestamp", 7, ts)])

The backend is chosen by URL: ``sqlite:///PATH`` or ``postgresql://…`` (driven by psycopg 3). The schema
comes only from the Alembic migrations shipped in ``migrations/``; nothing calls ``create_all``.

Semantics follow notary-server's SQL storage (``server/storage/sqldb.go``), except that:

* ``delete`` removes exactly one GUN (notary's memory store also removes every GUN it is a prefix of) and
  also its server keys;
* ``update_many`` requires, per role, the lowest new version to be above every stored version, regardless
  of the order of the updates in the batch (notary checks each update in list order);
* deletion rows of the changefeed store a NULL hash (reported as ``""``, as notary reports it);
* ``get_changes`` caps a page at 1000 records.

A SQLite database file that does not exist yet is created owner-only (0600) before SQLite opens it; SQLite
creates its ``-wal`` and ``-shm`` files with the same permissions.
"""

from __future__ import annotations

from notar.server.storage._engine import sqlite_file
from notar.server.storage._migrate import current_revision, head_revision, migrate
from notar.server.storage._probe import BY_HASH, BY_VERSION, CURRENT, Generation, MetaProbe, RowKey, Token
from notar.server.storage._sql import MAX_REPOSITORIES, SQLMetaStore, open_store
from notar.server.storage._types import (
    DEFAULT_CHANGES,
    MAX_CHANGES,
    Change,
    ChangeCategory,
    MetaStore,
    MetaUpdate,
    RepoSummary,
    StoredKey,
    StoredMeta,
)
from notar.server.storage.errors import (
    DuplicateKeyError,
    OldVersionError,
    RepositoryExistsError,
    SchemaError,
    StorageError,
    StorageUnavailableError,
)

__all__ = [
    "BY_HASH",
    "BY_VERSION",
    "CURRENT",
    "DEFAULT_CHANGES",
    "MAX_CHANGES",
    "MAX_REPOSITORIES",
    "Change",
    "ChangeCategory",
    "DuplicateKeyError",
    "Generation",
    "MetaProbe",
    "MetaStore",
    "MetaUpdate",
    "OldVersionError",
    "RepoSummary",
    "RepositoryExistsError",
    "RowKey",
    "SQLMetaStore",
    "SchemaError",
    "StorageError",
    "StorageUnavailableError",
    "StoredKey",
    "StoredMeta",
    "Token",
    "current_revision",
    "head_revision",
    "migrate",
    "open_store",
    "sqlite_file",
]
