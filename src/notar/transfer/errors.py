"""Errors of image transfer (push and pull).

Two families, because the command line treats them differently:

* :class:`SourceError` -- the *input* is wrong (a malformed OCI layout or ``docker save`` archive, a
  missing or corrupted blob in it, an unsafe tar member, an ambiguous tag, a non-empty destination).
  Fixing it means fixing the command or the files; the CLI exits with code 2.
* :class:`TransferError` -- the operation failed against the world (registry or trust server);
  exit code 1. Registry and trust-server failures keep their own classes
  (:class:`notar.registry.RegistryError`, :class:`notar.client.ClientError`).
"""

from __future__ import annotations

from notar.errors import NotarError

__all__ = [
    "BlobCorruptError",
    "BlobMissingError",
    "DestinationError",
    "LayoutError",
    "PartialPushError",
    "SigningError",
    "SourceError",
    "SourceTagError",
    "TransferError",
    "UnsafeArchiveError",
]


class SourceError(NotarError, ValueError):
    """Something the caller supplied is wrong (files, tag choice, destination); not retryable."""


class LayoutError(SourceError):
    """An OCI image layout or ``docker save`` archive is malformed; the message names the file."""


class BlobMissingError(LayoutError):
    """A descriptor names a blob that the layout or archive does not contain."""


class BlobCorruptError(LayoutError):
    """A blob in the layout or archive does not match its descriptor's digest or size."""


class UnsafeArchiveError(LayoutError):
    """A tar member or a path in the archive escapes the archive (absolute, ``..``, links outside)."""


class SourceTagError(SourceError):
    """No image, or more than one, in the source matches the requested tag."""


class DestinationError(SourceError):
    """The pull destination cannot be used (not empty without ``--force``, not a directory)."""


class TransferError(NotarError):
    """A push or pull failed in a way that is not the input's fault."""


class PartialPushError(TransferError):
    """The image was signed but the tag could not be set in the registry (pushing again completes it)."""


class SigningError(TransferError):
    """Signing the pushed image failed, so its tag was not set (the content is in the registry by digest)."""
