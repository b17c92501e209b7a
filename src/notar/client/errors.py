"""Errors of the client. Messages are written for the person at the terminal."""

from __future__ import annotations

from notar.errors import NotarError

__all__ = [
    "ClientError",
    "NotSignedError",
    "PermissionDeniedError",
    "PublishRejectedError",
    "RepositoryExistsError",
    "RepositoryNotFoundError",
    "TrustDataInvalidError",
    "TrustServerError",
    "TrustServerUnavailableError",
    "VersionConflictError",
]


class ClientError(NotarError):
    """A client operation failed."""


class TrustServerError(ClientError):
    """The trust server answered with an error."""


class TrustServerUnavailableError(TrustServerError):
    """The trust server cannot be reached or answered 5xx."""


class PermissionDeniedError(TrustServerError):
    """The trust server refused our credentials (401/403)."""


class RepositoryNotFoundError(TrustServerError):
    """The trust server has no trust data for the repository."""

    def __init__(self, gun: str, server: str) -> None:
        self.gun = gun
        super().__init__(
            f"remote trust data does not exist for {gun}: {server} does not have trust data for {gun}"
        )


class PublishRejectedError(TrustServerError):
    """The trust server refused an update (400)."""


class RepositoryExistsError(PublishRejectedError):
    """An import was refused: the destination already has trust data for the repository."""


class VersionConflictError(PublishRejectedError):
    """The update was refused with notary's ``VERSION`` code: another update was stored first."""


class TrustDataInvalidError(ClientError):
    """Trust data failed verification (signatures, expiry, rollback, hashes, root rotation)."""


class NotSignedError(ClientError):
    """A tag has no valid signature in the trusted roles."""
