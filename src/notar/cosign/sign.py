"""cosign key-based image signatures: the simplesigning payload and its signature.

The payload is what ``cosign sign --key`` signs (``sigstore/sigstore`` ``payload.Cosign``), written as Go's
``json.Marshal`` writes it (compact, struct field order, ``<``/``>``/``&`` escaped)::

    {"critical":{"identity":{"docker-reference":"registry.example.com/team/app"},
                 "image":{"docker-manifest-digest":"sha256:..."},
                 "type":"cosign container image signature"},
     "optional":null}

``docker-reference`` is the repository (registry host and path, no tag or digest; Docker Hub images are
``index.docker.io/library/alpine``); ``optional`` is ``null`` or the annotations (``cosign sign -a k=v``),
keys sorted. The signature is ECDSA with SHA-256 over the exact payload bytes, DER-encoded, then standard
base64: that text is the layer annotation ``dev.cosignproject.cosign/signature``.

Key access goes through :class:`notar.crypto.DigestSigner`: the payload is hashed here and only the
SHA-256 digest is handed over (the DER an AWS KMS ``ECDSA_SHA_256`` key returns is what cosign stores).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from notar.cosign.errors import CosignSigningError
from notar.crypto import CryptoError, DigestSigner
from notar.encoding import go_file_escape

__all__ = [
    "SIGNATURE_ANNOTATION",
    "SIGNATURE_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "CosignSignature",
    "go_json",
    "sign_image",
    "simplesigning_payload",
]

SIMPLESIGNING_MEDIA_TYPE: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION: Final = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE: Final = "cosign container image signature"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z|sha512:[0-9a-f]{128}\Z")
_REFERENCE = re.compile(r"[a-z0-9]+(?:[._:-][a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z", re.I)


def go_json(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it (UTF-8, HTML characters and U+2028/9 escaped).

    Dict order is kept unless *sort_keys* (Go sorts map keys and keeps struct field order).
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    return go_file_escape(text.encode("utf-8"))


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise CosignSigningError(f"{digest!r} is not a sha256:<hex> manifest digest")
    return digest


def simplesigning_payload(
    docker_reference: str, digest: str, *, annotations: Mapping[str, Any] | None = None
) -> bytes:
    """The payload cosign signs for the image manifest *digest* in repository *docker_reference*."""
    if (
        not isinstance(docker_reference, str)
        or not _REFERENCE.match(docker_reference)
        or "@" in docker_reference
    ):
        raise CosignSigningError(
            f"docker-reference {docker_reference!r} must be a repository name (registry/path, no tag or digest)"
        )
    last = docker_reference.rsplit("/", 1)[-1]
    if ":" in last:
        raise CosignSigningError(
            f"docker-reference {docker_reference!r} names a tag; give the repository only"
        )
    optional = None
    if annotations:
        if not all(isinstance(k, str) and k for k in annotations):
            raise CosignSigningError("annotation keys must be non-empty strings")
        optional = dict(annotations)
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": _check_digest(digest)},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    try:
        return go_json(document, sort_keys=True)  # the struct order is alphabetical here too
    except (TypeError, ValueError) as e:
        raise CosignSigningError(f"annotations cannot be written as JSON: {e}") from None


@dataclass(frozen=True)
class CosignSignature:
    """One signature: the payload blob and the base64 DER signature over it (the layer's annotation)."""

    payload: bytes
    signature: str

    @property
    def digest(self) -> str:
        """The payload blob's digest (also its diff ID: the layer is stored uncompressed)."""
        return f"sha256:{hashlib.sha256(self.payload).hexdigest()}"

    def layer(self) -> dict[str, Any]:
        """The layer descriptor as cosign writes it (go-containerregistry field order)."""
        return {
            "mediaType": SIMPLESIGNING_MEDIA_TYPE,
            "size": len(self.payload),
            "digest": self.digest,
            "annotations": {SIGNATURE_ANNOTATION: self.signature},
        }


def sign_image(
    docker_reference: str,
    digest: str,
    signer: DigestSigner,
    *,
    annotations: Mapping[str, Any] | None = None,
) -> CosignSignature:
    """Sign the image manifest *digest* of *docker_reference* with an ECDSA key (SHA-256, DER).

    The signature is checked with the signer's public key before it is returned, so a signer that signs
    with another key (or a KMS double that hashes twice) fails here.
    """
    payload = simplesigning_payload(docker_reference, digest, annotations=annotations)
    try:
        public = signer.public_key.to_crypto()
    except CryptoError as e:
        raise CosignSigningError(f"the signer's public key cannot be read: {e}") from None
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise CosignSigningError(
            f"cosign signatures need an ECDSA key; key {signer.public_key.key_id[:7]} is {signer.public_key.keytype}"
        )
    try:
        der = signer.sign_digest(hashlib.sha256(payload).digest(), hashes.SHA256())
    except CryptoError as e:
        raise CosignSigningError(f"the key cannot sign: {e}") from None
    try:
        public.verify(der, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise CosignSigningError(
            "the signature made does not verify with the signer's public key (is it DER ECDSA over SHA-256?)"
        ) from None
    return CosignSignature(payload, base64.b64encode(der).decode("ascii"))
