"""TUF metadata as Notary v1 writes it, and the rules to trust it (no I/O; the clock is passed in).

Parse a file with :meth:`Envelope.from_bytes`, sign a body with :meth:`Envelope.sign`, and check it with
:func:`verify_signatures`, :func:`verify_root`, :func:`check_expiry`, :func:`check_version` and
:func:`check_hashes`; :class:`TrustedSet` applies them in TUF order for one repository. notar's client,
server, UI and gateway all go through these, so the rules and their order live here once.
"""

from __future__ import annotations

from notar.tuf import roles
from notar.tuf._build import (
    DEFAULT_EXPIRY_DAYS,
    default_expiry,
    new_root,
    new_snapshot,
    new_targets,
    new_timestamp,
)
from notar.tuf._history import (
    MAX_ROOT_VERSIONS,
    HistoryError,
    RepositoryHistory,
    VerifiedHistory,
    verify_history,
)
from notar.tuf._model import (
    DelegatedRole,
    Delegations,
    Envelope,
    FileMeta,
    Role,
    Root,
    Signature,
    Signed,
    Snapshot,
    Targets,
    Timestamp,
    encode_file,
)
from notar.tuf._trusted import IGNORABLE, TrustedSet, Verified
from notar.tuf._verify import (
    RoleKeys,
    TrustPinning,
    check_expiry,
    check_hashes,
    check_targets_content,
    check_version,
    delegated_role_keys,
    root_certificate_keys,
    verify_root,
    verify_signatures,
)
from notar.tuf.errors import (
    BadHierarchyError,
    ExpiredError,
    HashMismatchError,
    InvalidKeyIDError,
    MetadataError,
    NoSignaturesError,
    RoleError,
    RollbackError,
    RootError,
    SignatureError,
    TargetPathError,
    ThresholdError,
    TufError,
    VersionError,
)

__all__ = [
    "MAX_ROOT_VERSIONS",
    "HistoryError",
    "RepositoryHistory",
    "VerifiedHistory",
    "verify_history",
    "DEFAULT_EXPIRY_DAYS",
    "IGNORABLE",
    "BadHierarchyError",
    "DelegatedRole",
    "Delegations",
    "Envelope",
    "ExpiredError",
    "FileMeta",
    "HashMismatchError",
    "InvalidKeyIDError",
    "MetadataError",
    "NoSignaturesError",
    "Role",
    "RoleError",
    "RoleKeys",
    "RollbackError",
    "Root",
    "RootError",
    "Signature",
    "SignatureError",
    "Signed",
    "Snapshot",
    "TargetPathError",
    "Targets",
    "ThresholdError",
    "Timestamp",
    "TrustPinning",
    "TrustedSet",
    "TufError",
    "Verified",
    "VersionError",
    "check_expiry",
    "check_hashes",
    "check_targets_content",
    "check_version",
    "default_expiry",
    "delegated_role_keys",
    "encode_file",
    "new_root",
    "new_snapshot",
    "new_targets",
    "new_timestamp",
    "roles",
    "root_certificate_keys",
    "verify_root",
    "verify_signatures",
]
