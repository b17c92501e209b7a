"""Errors of the registry layer.

Every class derives from :class:`notar.errors.NotarError`. Messages name the registry (and the scope for
authentication failures) but never a password, token or ``Authorization`` header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notar.errors import NotarError

__all__ = [
    "AuthenticationError",
    "BlobNotFoundError",
    "CredentialsError",
    "DigestMismatchError",
    "ErrorDetail",
    "InvalidDigestError",
    "InvalidReferenceError",
    "ManifestNotFoundError",
    "NotFoundError",
    "RegistryError",
    "RegistryProtocolError",
    "RegistryUnavailableError",
    "RepositoryNotFoundError",
    "UnsupportedManifestError",
]


class InvalidReferenceError(NotarError, ValueError):
    """An image reference (``name[:tag][@digest]``) is malformed; the message says which part and why."""


class InvalidDigestError(InvalidReferenceError):
    """A content digest (``algorithm:hex``) is malformed or uses an unsupported algorithm."""


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the registry's ``{"errors": [{"code", "message", "detail"}]}`` envelope."""

    code: str
    message: str = ""
    detail: object = None

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}" if self.message else self.code
        if self.detail not in (None, "", {}, []):
            text += f" ({self.detail})"
        return text


class RegistryError(NotarError):
    """Base class of everything that goes wrong talking to an OCI distribution registry.

    ``registry`` is the registry's base URL (or host) when known, ``status_code`` the HTTP status that
    caused the error (if any), ``details`` the parsed error envelope of the response body.
    """

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        status_code: int | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.registry = registry
        self.status_code = status_code
        self.details = tuple(details)

    @property
    def codes(self) -> tuple[str, ...]:
        """The registry's error codes (``MANIFEST_UNKNOWN``, ``DENIED``, ...), possibly empty."""
        return tuple(d.code for d in self.details)


class RegistryUnavailableError(RegistryError):
    """The registry cannot be reached or failed: connection refused, timeout, TLS failure, 5xx."""


class AuthenticationError(RegistryError):
    """Authentication failed or access was denied (401/403 after authenticating, token server failure)."""


class CredentialsError(RegistryError):
    """Credentials could not be loaded: unreadable docker config, failing credential helper."""


class NotFoundError(RegistryError):
    """Something the request named does not exist (404)."""


class ManifestNotFoundError(NotFoundError):
    """No manifest for that tag or digest (404, ``MANIFEST_UNKNOWN`` or ``NAME_UNKNOWN``)."""


class BlobNotFoundError(NotFoundError):
    """No blob with that digest (404, ``BLOB_UNKNOWN`` or ``NAME_UNKNOWN``)."""


class RepositoryNotFoundError(NotFoundError):
    """The repository does not exist (404 ``NAME_UNKNOWN`` on a repository-level request such as tags)."""


class DigestMismatchError(RegistryError):
    """Content does not match its digest or its announced size; nothing received may be trusted."""


class RegistryProtocolError(RegistryError):
    """The registry answered something the distribution protocol does not allow (malformed response)."""


class UnsupportedManifestError(RegistryProtocolError):
    """The manifest has a media type notar does not handle (e.g. the deprecated Docker schema 1)."""
