"""Signatures already in the registry by the same signer: what makes a migration idempotent.

A digest counts as signed by us in a format only when a signature there *verifies* as ours:

* Notation: a referrer whose envelope verifies (:meth:`notar.notation.Envelope.verify`), signs this
  manifest (media type, digest, size), has not expired, and whose leaf certificate (first of ``x5c``)
  is byte for byte the certificate we sign with. The ``io.cncf.notary.x509chain.thumbprint#S256``
  annotation of a referrer only rules candidates out early; it is never trusted to rule one in.
* cosign: a layer of ``sha256-<hex>.sig`` whose signature verifies with our public key and whose
  payload names this digest and this repository.

A signature that cannot be fetched or parsed does not count (the digest is signed again); a registry
that cannot be reached raises.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from notar.cosign import CosignError, verify_signatures
from notar.crypto import CryptoError, PublicKey
from notar.notation import Descriptor as NotationDescriptor
from notar.notation import (
    EnvelopeError,
    SignatureManifestError,
    parse_envelope,
    parse_signature_manifest,
)
from notar.notation.manifest import MAX_MANIFEST_SIZE, THUMBPRINT_ANNOTATION, check_blob
from notar.notation.verify import MAX_SIGNATURES
from notar.registry import (
    ARTIFACT_TYPE_NOTATION_SIGNATURE,
    Descriptor,
    DigestMismatchError,
    NotFoundError,
    Referrer,
    RegistryClient,
    RegistryProtocolError,
    list_referrers,
    read_cosign_signatures,
)

__all__ = ["cosign_signature_by", "notation_signature_by"]


def _could_be(referrer: Referrer, leaf_thumbprint: str) -> bool:
    """False only when the referrer's thumbprint annotation names another leaf certificate."""
    raw = referrer.annotations.get(THUMBPRINT_ANNOTATION)
    if raw is None:
        return True
    try:
        prints = json.loads(raw)
    except ValueError:
        return True
    return not (isinstance(prints, list) and prints and prints[0] != leaf_thumbprint)


def notation_signature_by(
    client: RegistryClient,
    repo: str,
    subject: Descriptor,
    leaf: x509.Certificate,
    *,
    now: datetime,
    limit: int = MAX_SIGNATURES,
) -> str | None:
    """The digest of a valid Notation signature of *subject* made with certificate *leaf*, else ``None``.

    At most *limit* referrers are looked at (notation's own limit by default).
    """
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    thumbprint = hashlib.sha256(leaf_der).hexdigest()
    target = NotationDescriptor(subject.media_type, subject.digest, subject.size)
    found = list_referrers(client, repo, subject.digest, artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE)
    for referrer in found.referrers[:limit]:
        if referrer.size > MAX_MANIFEST_SIZE or not _could_be(referrer, thumbprint):
            continue
        try:
            manifest = parse_signature_manifest(client.get_manifest(repo, referrer.digest).data)
            buf = io.BytesIO()
            client.get_blob(repo, manifest.envelope.digest, buf, expected_size=manifest.envelope.size)
            blob = buf.getvalue()
            check_blob(manifest.envelope, blob)
            envelope = parse_envelope(manifest.envelope.media_type, blob)
            envelope.verify()
        except (
            NotFoundError,
            DigestMismatchError,
            RegistryProtocolError,
            SignatureManifestError,
            EnvelopeError,
        ):
            continue
        if envelope.leaf.public_bytes(serialization.Encoding.DER) != leaf_der:
            continue
        if not envelope.target_artifact.matches(target):
            continue
        expiry = envelope.attributes.expiry
        if expiry is not None and expiry <= now:
            continue
        return referrer.digest
    return None


def cosign_signature_by(
    client: RegistryClient, repo: str, digest: str, public_key: PublicKey, *, docker_reference: str
) -> str | None:
    """The payload digest of a cosign signature of *digest* that verifies with *public_key*, else ``None``."""
    found = read_cosign_signatures(client, repo, digest)
    if found.manifest is None:
        return None
    try:
        key = public_key.to_crypto()
        results = verify_signatures(
            found.manifest.data, found.payloads, key, digest=digest, docker_reference=docker_reference
        )
    except (CosignError, CryptoError):
        return None
    for result in results:
        if result.verified:
            return result.digest
    return None
