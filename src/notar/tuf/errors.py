"""Errors of the TUF layer. Messages follow notary's wording where users and tests know it."""

from __future__ import annotations

from notar.errors import NotarError

__all__ = [
    "BadHierarchyError",
    "ExpiredError",
    "HashMismatchError",
    "InvalidKeyIDError",
    "MetadataError",
    "NoSignaturesError",
    "RoleError",
    "RollbackError",
    "RootError",
    "SignatureError",
    "TargetPathError",
    "ThresholdError",
    "TufError",
    "VersionError",
]


class TufError(NotarError):
    """Trust data is malformed or does not verify."""


class MetadataError(TufError, ValueError):
    """Metadata is malformed: bad JSON, wrong types, missing fields, bad base64, unknown role type."""


class RoleError(TufError):
    """A role name is invalid or a delegation does not exist."""


class SignatureError(TufError):
    """Signatures do not verify."""


class NoSignaturesError(SignatureError):
    def __init__(self) -> None:
        super().__init__("tuf: data has no signatures")


class ThresholdError(SignatureError):
    def __init__(self, role: str) -> None:
        self.role = role
        super().__init__(f"valid signatures did not meet threshold for {role}")


class InvalidKeyIDError(SignatureError):
    def __init__(self, message: str = "key ID is not valid for key content") -> None:
        super().__init__(message)


class TargetPathError(TufError):
    """A delegated role lists a target outside the paths it was delegated."""


class RootError(TufError):
    """A root cannot be trusted (bad certificates, failed rotation, pinning mismatch)."""


class ExpiredError(TufError):
    """Metadata has expired."""

    def __init__(self, role: str, expired_at: str) -> None:
        self.role = role
        super().__init__(f"{role} expired at {expired_at}")


class VersionError(TufError):
    """A version is lower than the one already trusted (rollback) or does not increment as required."""


class RollbackError(VersionError):
    """A version is lower than the one already trusted: a rollback (or freeze) attack, never ignorable."""


class HashMismatchError(TufError):
    """Bytes do not match the hashes or length another role recorded for them."""

    def __init__(self, message: str, *, role: str | None = None) -> None:
        self.role = role
        super().__init__(message)


class BadHierarchyError(TufError):
    """A role that the update needs is missing (for example a snapshot the server cannot generate)."""

    def __init__(self, missing: str, message: str) -> None:
        self.missing = missing
        super().__init__(message)
