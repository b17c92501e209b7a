"""Notation signature manifests: recognise them, take their envelope layer, read their annotations.

A Notation signature is stored as an OCI image manifest whose ``subject`` is the signed manifest and
whose single layer is the envelope. Two shapes exist and both are read:

* **current** -- ``artifactType: application/vnd.cncf.notary.signature`` and the empty config
  (``application/vnd.oci.empty.v1+json``, the 2-byte ``{}``);
* **older** (all notation e2e vectors) -- no ``artifactType``, and
  ``config.mediaType: application/vnd.cncf.notary.signature``.

Limits: a signature manifest is at most 4 MiB and its envelope at most 32 MiB (both checked before
anything is parsed or fetched). The annotation ``io.cncf.notary.x509chain.thumbprint#S256`` is a JSON
array (in a string) of the lowercase hex SHA-256 of each certificate of the chain, leaf first; it lets
a reader pick signatures by signer without fetching envelopes, and is not trusted for anything.

Everything here is pure: bytes in, values out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from notar.encoding import EncodingError, loads_strict
from notar.notation._model import MAX_ENVELOPE_SIZE, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS
from notar.notation.descriptor import Descriptor, digest_of
from notar.notation.errors import SignatureManifestError

__all__ = [
    "ARTIFACT_TYPE",
    "EMPTY_CONFIG",
    "MAX_ENVELOPE_SIZE",
    "MAX_MANIFEST_SIZE",
    "MEDIA_TYPE_EMPTY",
    "MEDIA_TYPE_OCI_MANIFEST",
    "THUMBPRINT_ANNOTATION",
    "ManifestForm",
    "SignatureManifest",
    "chain_thumbprints",
    "check_blob",
    "is_signature_manifest",
    "parse_signature_manifest",
    "referrers_tag",
]

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_EMPTY = "application/vnd.oci.empty.v1+json"
#: The empty config descriptor of the current form (the blob is the two bytes ``{}``).
EMPTY_CONFIG = Descriptor(MEDIA_TYPE_EMPTY, digest_of(b"{}"), 2)
THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"
#: Signature manifests larger than this are refused before parsing.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
_ENVELOPE_TYPES = (MEDIA_TYPE_JWS, MEDIA_TYPE_COSE)
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


class ManifestForm(StrEnum):
    """Which of the two shapes a signature manifest has."""

    ARTIFACT_TYPE = "artifactType"
    CONFIG_MEDIA_TYPE = "configMediaType"


@dataclass(frozen=True)
class SignatureManifest:
    """A parsed Notation signature manifest.

    ``subject`` is ``None`` when the manifest has none (then the tag schema's ``sha256-<hex>`` tag names
    the signed manifest); ``thumbprints`` is ``None`` without the annotation.
    """

    form: ManifestForm
    envelope: Descriptor
    subject: Descriptor | None
    thumbprints: tuple[str, ...] | None
    annotations: Mapping[str, str]


def _form(manifest: Mapping[str, Any]) -> ManifestForm | None:
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    if manifest.get("artifactType") == ARTIFACT_TYPE and config_type == MEDIA_TYPE_EMPTY:
        return ManifestForm.ARTIFACT_TYPE
    if config_type == ARTIFACT_TYPE:
        return ManifestForm.CONFIG_MEDIA_TYPE
    return None


def is_signature_manifest(manifest: Mapping[str, Any]) -> bool:
    """Whether a parsed manifest has one of the two Notation signature shapes (no other check)."""
    return _form(manifest) is not None


def _thumbprints(annotations: Mapping[str, str]) -> tuple[str, ...] | None:
    raw = annotations.get(THUMBPRINT_ANNOTATION)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise SignatureManifestError(
            f"signature manifest: {THUMBPRINT_ANNOTATION} is not a JSON array"
        ) from e
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and _HEX64.match(v) for v in value)
    ):
        raise SignatureManifestError(
            f"signature manifest: {THUMBPRINT_ANNOTATION} must be a non-empty array of lowercase hex SHA-256"
        )
    return tuple(value)


def parse_signature_manifest(data: bytes) -> SignatureManifest:
    """Parse a Notation signature manifest (either form); raise :class:`SignatureManifestError`.

    Checked: size (at most 4 MiB), strict JSON, ``schemaVersion`` 2, ``mediaType`` (when present) the
    OCI image manifest type, one of the two forms, exactly one layer whose media type is
    ``application/jose+json`` or ``application/cose`` and whose size is at most 32 MiB, a well-formed
    ``subject`` when present, and the thumbprint annotation when present.
    """
    if len(data) > MAX_MANIFEST_SIZE:
        raise SignatureManifestError(
            f"signature manifest is {len(data)} bytes; the limit is {MAX_MANIFEST_SIZE}"
        )
    try:
        manifest = loads_strict(data, what="signature manifest")
    except EncodingError as e:
        raise SignatureManifestError(str(e)) from e
    if not isinstance(manifest, dict):
        raise SignatureManifestError("signature manifest: expected a JSON object")
    if manifest.get("schemaVersion") != 2:
        raise SignatureManifestError("signature manifest: schemaVersion must be 2")
    media_type = manifest.get("mediaType")
    if media_type is not None and media_type != MEDIA_TYPE_OCI_MANIFEST:
        raise SignatureManifestError(
            f"signature manifest: mediaType {media_type!r} is not an OCI image manifest"
        )
    form = _form(manifest)
    if form is None:
        raise SignatureManifestError(
            f"not a Notation signature manifest (neither artifactType {ARTIFACT_TYPE} with the empty config"
            f" nor config.mediaType {ARTIFACT_TYPE})"
        )
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != 1:
        raise SignatureManifestError("signature manifest: must have exactly one layer (the envelope)")
    envelope = Descriptor.from_json(layers[0], what="signature manifest layer", error=SignatureManifestError)
    if envelope.media_type not in _ENVELOPE_TYPES:
        raise SignatureManifestError(
            f"signature manifest: layer media type {envelope.media_type!r} is not {MEDIA_TYPE_JWS} or {MEDIA_TYPE_COSE}"
        )
    if envelope.size > MAX_ENVELOPE_SIZE:
        raise SignatureManifestError(
            f"signature manifest: envelope is {envelope.size} bytes; the limit is {MAX_ENVELOPE_SIZE}"
        )
    subject = None
    if manifest.get("subject") is not None:
        subject = Descriptor.from_json(
            manifest["subject"], what="signature manifest subject", error=SignatureManifestError
        )
    annotations = manifest.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise SignatureManifestError("signature manifest: annotations must map strings to strings")
    return SignatureManifest(form, envelope, subject, _thumbprints(annotations), dict(annotations))


def chain_thumbprints(chain: Sequence[x509.Certificate]) -> tuple[str, ...]:
    """The ``x509chain.thumbprint#S256`` values of a chain: lowercase hex SHA-256 of each DER certificate."""
    return tuple(hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in chain)


def check_blob(descriptor: Descriptor, data: bytes) -> None:
    """Refuse *data* unless its size and digest are the descriptor's (before parsing a fetched blob)."""
    if len(data) != descriptor.size:
        raise SignatureManifestError(
            f"blob {descriptor.digest}: {len(data)} bytes, the descriptor says {descriptor.size}"
        )
    algorithm = descriptor.digest.partition(":")[0]
    if digest_of(data, algorithm) != descriptor.digest:
        raise SignatureManifestError(f"blob {descriptor.digest}: content does not match the digest")


def referrers_tag(subject_digest: str) -> str:
    """The referrers tag schema tag for a subject: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    algorithm, sep, encoded = subject_digest.partition(":")
    if not sep or not algorithm or not encoded:
        raise SignatureManifestError(f"{subject_digest!r} is not a digest")
    return f"{algorithm}-{encoded}"
