"""Errors of the storage layer.

Messages are one line, name the GUN/role/version involved where that helps, and never contain metadata
contents, key material or database passwords. The server maps :class:`OldVersionError` to 400 ``VERSION``,
:class:`StorageUnavailableError` to a "try again later" answer and any other :class:`StorageError` to 500.
"""

from __future__ import annotations

from notar.errors import NotarError

__all__ = [
    "DuplicateKeyError",
    "OldVersionError",
    "RepositoryExistsError",
    "SchemaError",
    "StorageError",
    "StorageUnavailableError",
]


class StorageError(NotarError):
    """The metadata store failed, or was asked for something it cannot store."""


class OldVersionError(StorageError):
    """An update carries a version that is not newer than what is stored (notary's ``ErrOldVersion``).

    ``role`` and ``version`` name the offending update when known; they are ``None`` when a concurrent
    writer won a race and the database's unique index rejected the row.
    """

    def __init__(self, message: str, *, role: str | None = None, version: int | None = None) -> None:
        super().__init__(message)
        self.role = role
        self.version = version


class StorageUnavailableError(StorageError):
    """The database cannot be reached or refused to work (down, locked, out of connections); retry later."""


class SchemaError(StorageError):
    """The database schema is missing, older or newer than this notar; run the migrations or upgrade notar."""


class DuplicateKeyError(StorageError):
    """A server key with this key ID is already stored for the GUN and role."""


class RepositoryExistsError(StorageError):
    """An import was asked to create a GUN that already has trust data (and not to replace it)."""
