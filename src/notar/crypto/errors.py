"""Errors of the crypto layer."""

from __future__ import annotations

from notar.errors import NotarError

__all__ = ["CryptoError", "InvalidKeyError", "UnsupportedKeyError"]


class CryptoError(NotarError):
    """A cryptographic operation failed."""


class UnsupportedKeyError(CryptoError):
    """The key type, curve, size or signature method is not supported."""


class InvalidKeyError(CryptoError, ValueError):
    """Key material is malformed (bad DER, bad PEM, wrong length, ...)."""
