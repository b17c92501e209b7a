"""Errors of :mod:`notar.notation`: one small tree under :class:`NotationError`.

Every message is one line and names the thing at fault (the file, the header, the statement), so the
CLI can print ``str(error)`` as is. Verification *outcomes* are not errors: a signature that fails a
step is a :class:`notar.notation.verify.StepResult`, not an exception. Errors are raised for inputs that
cannot be judged at all (a malformed envelope is caught and turned into an integrity failure; a broken
trust policy or a missing trust store is a configuration error the caller must fix).
"""

from __future__ import annotations

from notar.errors import NotarError

__all__ = [
    "EnvelopeError",
    "NoApplicablePolicyError",
    "NotationError",
    "CertificateRequestError",
    "SignatureManifestError",
    "SigningError",
    "TimestampError",
    "TrustPolicyError",
    "TrustStoreError",
    "UnsupportedEnvelopeError",
]


class NotationError(NotarError):
    """Base class of every error raised by :mod:`notar.notation`."""


class EnvelopeError(NotationError, ValueError):
    """A signature envelope is malformed, breaks a header rule, or its signature does not verify."""


class UnsupportedEnvelopeError(EnvelopeError):
    """The envelope media type is neither ``application/jose+json`` nor ``application/cose``."""


class SignatureManifestError(NotationError, ValueError):
    """A manifest is not a usable Notation signature manifest (shape, media type or size)."""


class TrustPolicyError(NotationError, ValueError):
    """The trust policy document is invalid (version, statements, scopes, levels, stores, identities)."""


class NoApplicablePolicyError(TrustPolicyError):
    """No trust policy statement applies to the repository being verified."""


class TrustStoreError(NotationError):
    """A named trust store is missing, is a symlink, or holds a file that is not a certificate."""


class TimestampError(NotationError, ValueError):
    """An RFC 3161 timestamp token is malformed, not trusted, or does not cover the signature."""


class SigningError(NotationError, ValueError):
    """A Notation signature cannot be made: the key, certificate chain, times or descriptor break a rule."""


class CertificateRequestError(NotationError, ValueError):
    """A signing certificate cannot be issued as asked (subject, validity, key or issuing CA)."""
