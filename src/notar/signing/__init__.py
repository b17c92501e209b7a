"""The signing event: tags resolved once, then signed in every requested format (ADR 0008, seam 1).

Above :mod:`notar.client` (Notary v1) and :mod:`notar.registry` (where Notation and cosign signatures
live), below :mod:`notar.release` and :mod:`notar.cli`, which call it. The formats themselves are the
pure packages :mod:`notar.notation` and :mod:`notar.cosign`; this package puts their bytes in the
registry and Notary v1's tags on the trust server::

    subjects = resolve_subjects(registry, refs, recursive=True)      # one verified GET per tag
    outcomes = sign_event(subjects, [V1Format(repo), NotationFormat(registry, key), CosignFormat(...)])

* :func:`resolve_subjects` -- ``IMAGE:TAG`` -> :class:`Subject` (media type, digest, size from the
  bytes received), and with ``recursive`` the manifests an index lists.
* :class:`V1Format`, :class:`NotationFormat`, :class:`CosignFormat` -- the format signers
  (:class:`FormatSigner`): one :class:`Outcome` (``signed`` / ``skipped`` / ``failed`` and why) per
  subject; :class:`Unavailable` stands for a format that cannot sign at all (no key, no certificate).
* :func:`sign_event` -- every format over the same subjects; a failure in one never undoes or hides
  another.
* :func:`choose_signer_key` / :func:`open_signing_key` -- the one key (and certificate chain) Notation
  and cosign sign with: signer NAME's, from the trust directory (key file or KMS reference).
* :func:`migrate` -- Notation or cosign signatures for exactly the digests valid Notary v1 trust data
  vouches for, skipping those already signed by the same certificate or key
  (:func:`notation_signature_by`, :func:`cosign_signature_by`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notar._lazy import lazy_getattr
from notar.signing._event import sign_event
from notar.signing._formats import V1Format
from notar.signing._keys import (
    AmbiguousSignerError,
    SignerKey,
    SigningKey,
    choose_signer_key,
    open_signing_key,
)
from notar.signing._model import (
    RESERVED_ANNOTATION_PREFIX,
    Format,
    FormatSigner,
    Outcome,
    SigningSetupError,
    Status,
    Subject,
    Unavailable,
    parse_annotations,
    parse_duration,
    parse_formats,
)
from notar.signing._resolve import resolve_subjects

if TYPE_CHECKING:
    from notar.signing._cosign import CosignFormat, cosign_docker_reference
    from notar.signing._existing import cosign_signature_by, notation_signature_by
    from notar.signing._migrate import MigrationItem, MigrationStatus, is_signature_tag, migrate
    from notar.signing._notation import NotationFormat

# Imported on first use: a Notary v1 signing event does not load the Notation and cosign packages
# (CBOR, X.509 policy, ...), which would add tens of milliseconds to every `notar sign`.
_WHERE = {
    "_cosign": ("CosignFormat", "cosign_docker_reference"),
    "_existing": ("cosign_signature_by", "notation_signature_by"),
    "_migrate": ("MigrationItem", "MigrationStatus", "is_signature_tag", "migrate"),
    "_notation": ("NotationFormat",),
}
if not TYPE_CHECKING:
    __getattr__ = lazy_getattr(__name__, globals(), _WHERE)


__all__ = [
    "RESERVED_ANNOTATION_PREFIX",
    "AmbiguousSignerError",
    "CosignFormat",
    "Format",
    "FormatSigner",
    "MigrationItem",
    "MigrationStatus",
    "NotationFormat",
    "Outcome",
    "SignerKey",
    "SigningKey",
    "SigningSetupError",
    "Status",
    "Subject",
    "Unavailable",
    "V1Format",
    "choose_signer_key",
    "cosign_docker_reference",
    "cosign_signature_by",
    "is_signature_tag",
    "migrate",
    "notation_signature_by",
    "open_signing_key",
    "parse_annotations",
    "parse_duration",
    "parse_formats",
    "resolve_subjects",
    "sign_event",
]
