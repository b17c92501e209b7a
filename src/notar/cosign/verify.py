"""Verify cosign key-based signatures: which layers of a ``.sig`` manifest a public key signed for a digest.

Pure: the ``.sig`` manifest bytes, the blobs the caller fetched (digest -> bytes), the public key
(``cosign.pub`` PEM) and the image manifest digest go in; one :class:`LayerResult` per layer comes out.
No policy: "a signature by one of these keys is enough" is the caller's (ADR 0008, seam 3).

Per layer, as cosign's ``SIGNATURE_SPEC`` and ``cosign verify --key`` check it:

1. the layer is a simplesigning layer (``application/vnd.dev.cosign.simplesigning.v1+json``) with a
   ``dev.cosignproject.cosign/signature`` annotation holding standard base64;
2. its blob was provided, has the descriptor's size and digest (at most 1 MiB);
3. the signature verifies over the exact blob bytes: ECDSA with SHA-256 (DER), RSA PKCS#1 v1.5 with
   SHA-256, or Ed25519 -- what sigstore's ``LoadVerifier(key, SHA256)`` does for each key type;
4. the payload is a JSON object whose ``critical.type`` is ``cosign container image signature`` and
   whose ``critical.image.docker-manifest-digest`` is the digest verified; when *docker_reference* is
   given, ``critical.identity.docker-reference`` must equal it too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from notar.cosign.errors import CosignManifestError
from notar.cosign.manifest import parse_sig_manifest
from notar.cosign.sign import SIGNATURE_ANNOTATION, SIGNATURE_TYPE, SIMPLESIGNING_MEDIA_TYPE
from notar.encoding import EncodingError, loads_strict
from notar.notation.descriptor import Descriptor

__all__ = ["MAX_PAYLOAD_SIZE", "LayerResult", "load_public_key", "verify_signatures"]

#: Payload blobs larger than this are not read (real ones are a few hundred bytes).
MAX_PAYLOAD_SIZE: Final = 1024 * 1024

VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class LayerResult:
    """The verdict on one layer: its position and digest, whether it verified, and why (one line)."""

    index: int
    digest: str | None
    verified: bool
    reason: str
    docker_reference: str | None = None
    optional: Mapping[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        state = "verified" if self.verified else "not verified"
        return f"layer {self.index} ({self.digest or 'no digest'}): {state}: {self.reason}"


def load_public_key(pem: bytes) -> VerifyingKey:
    """Read a ``PUBLIC KEY`` PEM (``cosign.pub``): ECDSA, RSA or Ed25519; :class:`CosignManifestError` else."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise CosignManifestError(f"not a PEM public key: {e}") from None
    if not isinstance(key, VerifyingKey):
        raise CosignManifestError(f"unsupported public key type {type(key).__name__}")
    return key


def _verify(key: VerifyingKey, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def _claims(payload: bytes, digest: str, docker_reference: str | None) -> tuple[str | None, str | None, Any]:
    """``(why not, docker-reference, optional)`` for a payload whose signature verified."""
    try:
        document = loads_strict(payload, what="payload")
    except EncodingError as e:
        return str(e), None, None
    critical = document.get("critical") if isinstance(document, dict) else None
    if not isinstance(critical, dict):
        return "payload has no critical object", None, None
    identity = critical.get("identity")
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    optional = document.get("optional")
    if critical.get("type") != SIGNATURE_TYPE:
        return f"payload type is {critical.get('type')!r}, not {SIGNATURE_TYPE!r}", reference, optional
    image = critical.get("image")
    signed = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if signed != digest:
        return f"payload signs {signed!r}, not {digest}", reference, optional
    if docker_reference is not None and reference != docker_reference:
        return f"payload names {reference!r}, not {docker_reference!r}", reference, optional
    return None, reference if isinstance(reference, str) else None, optional


def _layer(
    index: int,
    raw: Any,
    blobs: Mapping[str, bytes],
    key: VerifyingKey,
    digest: str,
    docker_reference: str | None,
) -> LayerResult:
    try:
        desc = Descriptor.from_json(raw, what=f"layer {index}", error=CosignManifestError)
    except CosignManifestError as e:
        return LayerResult(index, None, False, str(e))

    def fail(reason: str, reference: str | None = None) -> LayerResult:
        return LayerResult(index, desc.digest, False, reason, reference)

    if desc.media_type != SIMPLESIGNING_MEDIA_TYPE:
        return fail(f"media type {desc.media_type!r} is not a simplesigning signature")
    encoded = desc.annotations.get(SIGNATURE_ANNOTATION)
    if not encoded:
        return fail(f"no {SIGNATURE_ANNOTATION} annotation")
    try:
        signature = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return fail(f"{SIGNATURE_ANNOTATION} is not standard base64")
    if desc.size > MAX_PAYLOAD_SIZE:
        return fail(f"payload is {desc.size} bytes; the limit is {MAX_PAYLOAD_SIZE}")
    payload = blobs.get(desc.digest)
    if payload is None:
        return fail("payload blob not provided")
    algorithm, _, _hex = desc.digest.partition(":")
    if (
        len(payload) != desc.size
        or f"{algorithm}:{hashlib.new(algorithm, payload).hexdigest()}" != desc.digest
    ):
        return fail("payload blob does not match the layer's digest and size")
    if not _verify(key, signature, payload):
        return fail("signature does not verify with the public key")
    why, reference, optional = _claims(payload, digest, docker_reference)
    if why is not None:
        return fail(why, reference)
    return LayerResult(
        index, desc.digest, True, "signature verifies; payload names the digest", reference, optional
    )


def verify_signatures(
    manifest: bytes,
    blobs: Mapping[str, bytes],
    public_key: bytes | VerifyingKey,
    *,
    digest: str,
    docker_reference: str | None = None,
) -> list[LayerResult]:
    """Judge every layer of the ``.sig`` *manifest* for the image manifest *digest*.

    *blobs* maps layer digests to the payload bytes fetched; *public_key* is a PEM (``cosign.pub``)
    or a loaded key. Raises :class:`CosignManifestError` only when the manifest or key cannot be read at
    all; each layer's outcome is a :class:`LayerResult` (``verified`` or why not).
    """
    key = load_public_key(public_key) if isinstance(public_key, bytes) else public_key
    parsed = parse_sig_manifest(manifest)
    return [_layer(i, raw, blobs, key, digest, docker_reference) for i, raw in enumerate(parsed["layers"])]
