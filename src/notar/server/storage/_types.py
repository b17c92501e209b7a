"""The storage interface: plain value types and the :class:`MetaStore` protocol (no database code here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

__all__ = [
    "DEFAULT_CHANGES",
    "MAX_CHANGES",
    "Change",
    "ChangeCategory",
    "MetaStore",
    "MetaUpdate",
    "RepoSummary",
    "StoredKey",
    "StoredMeta",
]

DEFAULT_CHANGES = 100  # get_changes(records=0), as notary's handler
MAX_CHANGES = 1000  # |records| is capped here so one request cannot read the whole feed

ChangeCategory = Literal["update", "deletion"]


@dataclass(frozen=True, slots=True)
class MetaUpdate:
    """One file to store: ``data`` is kept byte for byte."""

    role: str
    version: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class StoredMeta:
    """One stored version of a role. ``sha256`` is the lower-case hex digest of ``data``."""

    gun: str
    role: str
    version: int
    data: bytes = field(repr=False)
    sha256: str
    created_at: datetime  # aware, UTC


@dataclass(frozen=True, slots=True)
class Change:
    """A changefeed record: a new timestamp (``update``) or a deleted GUN (``deletion``, version 0)."""

    id: int
    created_at: datetime  # aware, UTC
    gun: str
    version: int
    sha256: str  # "" for deletions
    category: ChangeCategory


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A server-held (timestamp/snapshot) key. ``private`` is an encrypted blob, opaque to storage."""

    gun: str
    role: str
    key_id: str
    algorithm: str
    public: bytes = field(repr=False)
    private: bytes = field(repr=False)
    created_at: datetime  # aware; stored and returned as UTC


@dataclass(frozen=True, slots=True)
class RepoSummary:
    """A GUN that has trust data: when its newest timestamp was written, and that timestamp's version."""

    gun: str
    updated_at: datetime  # aware, UTC
    timestamp_version: int


class MetaStore(Protocol):
    """What the server needs from storage. Every method is synchronous and safe to call from many threads.

    Failures raise :class:`~notar.server.storage.errors.StorageError` (or a subclass), never a database
    driver's exception.
    """

    def update_many(self, gun: str, updates: Sequence[MetaUpdate]) -> None:
        """Store all ``updates`` atomically, or none (:class:`OldVersionError` if a version is not new)."""
        ...

    def import_many(self, gun: str, updates: Sequence[MetaUpdate], *, replace: bool = False) -> None:
        """Store a whole repository (several versions per role) atomically; the GUN must have no files
        (:class:`RepositoryExistsError`) unless *replace*, which deletes them in the same transaction."""
        ...

    def get_current(self, gun: str, role: str) -> StoredMeta | None:
        """The highest stored version of ``role``, or ``None``."""
        ...

    def get_current_many(self, gun: str, roles: Sequence[str]) -> dict[str, StoredMeta]:
        """The highest version of each of ``roles`` that has one (one query)."""
        ...

    def get_checksum(self, gun: str, role: str, sha256: str) -> StoredMeta | None:
        """The version of ``role`` whose data has this hex sha256, or ``None``."""
        ...

    def get_version(self, gun: str, role: str, version: int) -> StoredMeta | None:
        """One exact version of ``role``, or ``None``."""
        ...

    def delete(self, gun: str) -> bool:
        """Remove every file and server key of exactly ``gun``; ``True`` if anything was deleted."""
        ...

    def get_changes(self, change_id: int, records: int, gun: str | None = None) -> list[Change]:
        """A page of the changefeed, oldest first (see :meth:`SQLMetaStore.get_changes`)."""
        ...

    def list_repositories(self, query: str = "", limit: int = 100) -> list[RepoSummary]:
        """GUNs containing ``query`` (case-insensitive), sorted by name."""
        ...

    def get_keys(self, gun: str, role: str) -> list[StoredKey]:
        """The server keys of ``gun``/``role``, newest first."""
        ...

    def add_key(self, key: StoredKey) -> None:
        """Store a new server key (:class:`DuplicateKeyError` if its key ID is already stored)."""
        ...

    def check_health(self) -> None:
        """Return if the database answers; raise :class:`StorageUnavailableError` otherwise."""
        ...

    def close(self) -> None:
        """Release all connections."""
        ...
