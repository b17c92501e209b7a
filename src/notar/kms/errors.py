"""Errors of the KMS layer: each message is one line naming the key and the cause (never key material)."""

from __future__ import annotations

from notar.crypto import CryptoError, UnsupportedKeyError
from notar.errors import NotarError

__all__ = [
    "KeyURIError",
    "KmsAccessDeniedError",
    "KmsError",
    "KmsKeySpecError",
    "KmsKeyStateError",
    "KmsKeyUsageError",
    "KmsSignatureError",
    "KmsThrottledError",
    "KmsUnavailableError",
]


class KmsError(NotarError):
    """A KMS key cannot be used; the message names the key and why."""


class KeyURIError(KmsError, ValueError):
    """A key reference is not ``awskms://[ENDPOINT]/{key id | key ARN | alias/NAME | alias ARN}``."""


class KmsAccessDeniedError(KmsError):
    """KMS refused the call (``AccessDeniedException``) or the credentials: the message names the action."""


class KmsKeyStateError(KmsError):
    """The key does not exist, is disabled or is pending deletion (or import)."""


class KmsKeyUsageError(KmsError):
    """The key cannot sign at all: a symmetric key, or ``KeyUsage`` ``ENCRYPT_DECRYPT``."""


class KmsKeySpecError(KmsError, UnsupportedKeyError):
    """The key signs, but not what this format needs (Notary v1: ``ECC_NIST_P256`` only)."""


class KmsThrottledError(KmsError):
    """KMS kept throttling the calls after the bounded retries."""


class KmsUnavailableError(KmsError):
    """KMS could not be reached or kept failing on its side (connection errors, timeouts, 5xx)."""


class KmsSignatureError(KmsError, CryptoError):
    """KMS answered with a signature that does not verify with the key's public key over the digest."""
