"""Notation signing: a JWS or COSE envelope for a descriptor, and the signature manifest that carries it.

Pure, like the rest of :mod:`notar.notation`: the descriptor, the key, the certificate chain and the clock
go in; bytes come out. Nothing here talks to a registry, reads a file or reads the clock.

>>> envelope = sign_envelope(subject, signer, chain, signing_time=now)          # doctest: +SKIP
>>> manifest, descriptor, blobs = build_signature_artifact(envelope, subject)   # doctest: +SKIP

**Key access** goes through :class:`notar.crypto.DigestSigner` (ADR 0008, seam 2): the envelope is
hashed here with the hash its algorithm names and only the digest is handed to the signer, which
returns DER for ECDSA (converted here to the fixed-width ``R || S`` that JWS and COSE carry) or the
RSASSA-PSS signature. A file key (:class:`notar.crypto.PrivateKey`) and an AWS KMS key
(``MessageType=DIGEST``) are used the same way; nothing here sees key material.

**What is written** mirrors what ``notation sign`` writes (``tests/vectors/notation``):

* JWS (``application/jose+json``, the default): flattened JSON ``{payload, protected, header,
  signature}``; protected header (keys sorted, compact) ``alg``, ``crit`` (the signing scheme, and
  ``io.cncf.notary.expiry`` when given), ``cty`` ``application/vnd.cncf.notary.payload.v1+json``,
  ``io.cncf.notary.signingScheme`` ``notary.x509``, ``io.cncf.notary.signingTime`` (RFC 3339, UTC,
  seconds) and the optional expiry; unprotected ``x5c`` (standard base64 DER, leaf first) and
  ``io.cncf.notary.signingAgent``.
* COSE (``application/cose``): ``COSE_Sign1_Tagged`` with the same attributes (times as CBOR tag 1,
  integer seconds), labels 1/2/3 for alg/crit/content type, ``x5chain`` (label 33) as an array.
* The payload ``{"targetArtifact": {mediaType, digest, size, annotations?}}``: the subject's
  annotations are the user metadata (``notation sign --user-metadata k=v``); keys starting with
  ``io.cncf.notary`` are reserved and refused.
* The signature manifest in the current form (``artifactType application/vnd.cncf.notary.signature``,
  the empty config and its 2-byte ``{}`` blob, one layer = the envelope, ``subject`` = the signed
  manifest's descriptor) with the annotations ``io.cncf.notary.x509chain.thumbprint#S256`` and
  ``org.opencontainers.image.created`` (the signing time, UTC).

**Checks before signing** (``notation`` refuses the same): the chain meets the Notary Project rules
(:func:`~notar.notation.certs.signing_chain_problems`) and is valid at the signing time, the leaf
certifies the signer's public key, the key has a Notation algorithm (RSA 2048/3072/4096 -> PS256/384/512,
EC P-256/384/521 -> ES256/384/512), the expiry is after the signing time. **After signing** the envelope
is parsed and verified with the verifier's own code, so a signer that signs with another key (a KMS
key that does not match the certificate) fails here, not in every pull.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import cbor2
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notar import __version__
from notar.crypto import CryptoError, DigestSigner, ecdsa_der_to_raw
from notar.notation._model import (
    HEADER_EXPIRY,
    HEADER_SIGNING_AGENT,
    HEADER_SIGNING_SCHEME,
    HEADER_SIGNING_TIME,
    MAX_CHAIN_LENGTH,
    MEDIA_TYPE_COSE,
    MEDIA_TYPE_JWS,
    PAYLOAD_CONTENT_TYPE,
    Algorithm,
    Envelope,
    SigningScheme,
    algorithm_for_key,
)
from notar.notation.certs import signing_chain_problems, subject_text, validity_problems
from notar.notation.cose import COSE_ALGORITHMS, encode_sig_structure
from notar.notation.descriptor import Descriptor, digest_of
from notar.notation.envelope import parse_envelope
from notar.notation.errors import EnvelopeError, SignatureManifestError, SigningError
from notar.notation.manifest import (
    ARTIFACT_TYPE,
    EMPTY_CONFIG,
    MEDIA_TYPE_OCI_MANIFEST,
    THUMBPRINT_ANNOTATION,
    chain_thumbprints,
    parse_signature_manifest,
)

__all__ = [
    "ANNOTATION_CREATED",
    "RESERVED_ANNOTATION_PREFIX",
    "SIGNING_AGENT",
    "SignatureArtifact",
    "SignedEnvelope",
    "build_signature_artifact",
    "sign_artifact",
    "sign_envelope",
]

#: What ``io.cncf.notary.signingAgent`` says by default.
SIGNING_AGENT = f"notar/{__version__}"
#: Payload annotations (user metadata) may not start with this: the Notary Project reserves it.
RESERVED_ANNOTATION_PREFIX = "io.cncf.notary"
ANNOTATION_CREATED = "org.opencontainers.image.created"
_EMPTY_CONFIG_BLOB = b"{}"
_COSE_ALG_IDS = {alg: ident for ident, alg in COSE_ALGORITHMS.items()}
_TAG_SIGN1, _TAG_EPOCH = 18, 1
_LABEL_ALG, _LABEL_CRIT, _LABEL_CTY, _LABEL_X5CHAIN = 1, 2, 3, 33


@dataclass(frozen=True)
class SignedEnvelope:
    """A signature envelope as made: its media type, its bytes, and the envelope parsed back from them.

    ``envelope`` is what the verifier reads from ``data`` (chain, signing time, target artifact), so a
    caller never re-parses.
    """

    media_type: str
    data: bytes
    envelope: Envelope

    @property
    def descriptor(self) -> Descriptor:
        """The layer descriptor of the envelope blob (media type, sha256 digest, size)."""
        return Descriptor(self.media_type, digest_of(self.data), len(self.data))


class SignatureArtifact(NamedTuple):
    """What a registry writer pushes for one Notation signature.

    * ``manifest``: the signature manifest's exact bytes (PUT them with ``descriptor.media_type``);
    * ``descriptor``: the manifest's descriptor, with ``artifactType`` and the manifest's annotations,
      i.e. the entry for a referrers index (the ``sha256-<hex>`` tag schema or the referrers API);
    * ``blobs``: digest -> bytes of every blob the manifest names (the envelope and the 2-byte ``{}``
      config), to upload before the manifest.
    """

    manifest: bytes
    descriptor: Descriptor
    blobs: dict[str, bytes]


# ----------------------------------------------------------------------------------------- checks


def _utc_seconds(value: datetime, *, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise SigningError(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC).replace(microsecond=0)


def _rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _target_artifact(subject: Descriptor) -> dict[str, Any]:
    """The subject as a payload descriptor, checked as the verifier will read it."""
    value: dict[str, Any] = {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}
    annotations = dict(subject.annotations)
    for name, text in annotations.items():
        if not isinstance(name, str) or not name:
            raise SigningError("user metadata keys must be non-empty strings")
        if name.startswith(RESERVED_ANNOTATION_PREFIX):
            raise SigningError(
                f"user metadata key {name!r} is reserved (keys starting with {RESERVED_ANNOTATION_PREFIX!r})"
            )
        if not isinstance(text, str):
            raise SigningError(f"user metadata {name!r} must have a string value")
    if annotations:
        value["annotations"] = annotations
    Descriptor.from_json(value, what="subject descriptor", error=SigningError)
    return value


def _spki(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    data = public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data if isinstance(data, bytes) else b""


def _problems(problems: Sequence[object], limit: int = 3) -> str:
    text = "; ".join(str(p) for p in problems[:limit])
    return text + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")


def _check_chain(
    chain: Sequence[x509.Certificate], signer: DigestSigner, signing_time: datetime
) -> tuple[Algorithm, ec.EllipticCurvePublicKey | rsa.RSAPublicKey]:
    """The algorithm and leaf key, once the chain is fit to sign with at *signing_time*."""
    if not chain:
        raise SigningError("the certificate chain is empty: the signing key needs a certificate")
    if len(chain) > MAX_CHAIN_LENGTH:
        raise SigningError(f"{len(chain)} certificates in the chain; at most {MAX_CHAIN_LENGTH}")
    problems = signing_chain_problems(chain)
    if problems:
        raise SigningError(f"the certificate chain breaks the Notary Project rules: {_problems(problems)}")
    expired = validity_problems(chain, signing_time)
    if expired:
        raise SigningError(
            f"the certificate chain is not valid at the signing time {_rfc3339(signing_time)}: {_problems(expired)}"
        )
    try:
        leaf_key = chain[0].public_key()
    except (ValueError, UnsupportedAlgorithm) as e:
        raise SigningError(f"the signing certificate's public key cannot be read: {e}") from None
    algorithm = algorithm_for_key(leaf_key)
    if algorithm is None or not isinstance(leaf_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise SigningError(
            "the signing key is not one Notation allows (RSA 2048/3072/4096 or EC P-256/P-384/P-521)"
        )
    try:
        signer_key = signer.public_key.to_crypto()
    except CryptoError as e:
        raise SigningError(f"the signer's public key cannot be read: {e}") from None
    if _spki(signer_key) != _spki(leaf_key):
        raise SigningError(
            f"the signing certificate ({subject_text(chain[0])}) is not for the signer's key "
            f"{signer.public_key.key_id[:7]}"
        )
    return algorithm, leaf_key


def _signature(
    signer: DigestSigner,
    algorithm: Algorithm,
    leaf_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    message: bytes,
) -> bytes:
    """Hash *message* with the algorithm's hash, have the signer sign the digest, return raw bytes."""
    hasher = hashes.Hash(algorithm.hash)
    hasher.update(message)
    digest = hasher.finalize()
    try:
        signature = signer.sign_digest(digest, algorithm.hash)
    except CryptoError as e:
        raise SigningError(f"the key cannot sign with {algorithm}: {e}") from None
    if isinstance(leaf_key, ec.EllipticCurvePublicKey):
        try:
            return ecdsa_der_to_raw(signature, leaf_key.curve)
        except CryptoError as e:
            raise SigningError(f"the signer returned an unusable ECDSA signature: {e}") from None
    return signature


# -------------------------------------------------------------------------------------- envelopes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Any, *, sort_keys: bool = False) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False).encode("utf-8")


def _crit(expiry: datetime | None) -> list[str]:
    return [HEADER_SIGNING_SCHEME] + ([HEADER_EXPIRY] if expiry is not None else [])


def _jws(
    target: dict[str, Any],
    *,
    algorithm: Algorithm,
    chain: Sequence[x509.Certificate],
    signing_time: datetime,
    expiry: datetime | None,
    agent: str,
    sign: Callable[[bytes], bytes],
) -> bytes:
    protected: dict[str, Any] = {
        "alg": algorithm.value,
        "crit": _crit(expiry),
        "cty": PAYLOAD_CONTENT_TYPE,
        HEADER_SIGNING_SCHEME: SigningScheme.X509.value,
        HEADER_SIGNING_TIME: _rfc3339(signing_time),
    }
    if expiry is not None:
        protected[HEADER_EXPIRY] = _rfc3339(expiry)
    protected_b64 = _b64url(_json(protected, sort_keys=True))
    payload_b64 = _b64url(_json({"targetArtifact": target}, sort_keys=True))
    signature = sign(f"{protected_b64}.{payload_b64}".encode("ascii"))
    header: dict[str, Any] = {
        "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii") for c in chain]
    }
    if agent:
        header[HEADER_SIGNING_AGENT] = agent
    return _json(
        {
            "payload": payload_b64,
            "protected": protected_b64,
            "header": header,
            "signature": _b64url(signature),
        }
    )


def _cose(
    target: dict[str, Any],
    *,
    algorithm: Algorithm,
    chain: Sequence[x509.Certificate],
    signing_time: datetime,
    expiry: datetime | None,
    agent: str,
    sign: Callable[[bytes], bytes],
) -> bytes:
    protected: dict[Any, Any] = {
        _LABEL_ALG: _COSE_ALG_IDS[algorithm],
        _LABEL_CRIT: _crit(expiry),
        _LABEL_CTY: PAYLOAD_CONTENT_TYPE,
        HEADER_SIGNING_SCHEME: SigningScheme.X509.value,
        HEADER_SIGNING_TIME: cbor2.CBORTag(_TAG_EPOCH, int(signing_time.timestamp())),
    }
    if expiry is not None:
        protected[HEADER_EXPIRY] = cbor2.CBORTag(_TAG_EPOCH, int(expiry.timestamp()))
    protected_bytes = bytes(cbor2.dumps(protected, canonical=True))
    # notation-go writes the COSE payload in its struct's field order (mediaType, digest, size, ...).
    payload = _json({"targetArtifact": target})
    signature = sign(encode_sig_structure(protected_bytes, payload))
    unprotected: dict[Any, Any] = {
        _LABEL_X5CHAIN: [c.public_bytes(serialization.Encoding.DER) for c in chain]
    }
    if agent:
        unprotected[HEADER_SIGNING_AGENT] = agent
    message = cbor2.CBORTag(_TAG_SIGN1, [protected_bytes, unprotected, payload, signature])
    return bytes(cbor2.dumps(message, canonical=True))


def sign_envelope(
    subject: Descriptor,
    signer: DigestSigner,
    chain: Sequence[x509.Certificate],
    *,
    signing_time: datetime,
    media_type: str = MEDIA_TYPE_JWS,
    expiry: datetime | None = None,
    signing_agent: str = SIGNING_AGENT,
) -> SignedEnvelope:
    """Sign *subject* (the image manifest's descriptor; its annotations are the user metadata).

    *chain* is the signer's certificate chain, leaf first, root last (what the key store keeps beside
    the key); *signing_time* is the clock (timezone-aware; written to the second); *expiry*, when
    given, is written as ``io.cncf.notary.expiry`` (critical) and must be after the signing time;
    *media_type* picks the envelope: ``application/jose+json`` (JWS) or ``application/cose``.

    Raises :class:`SigningError` (one line) for every rule the inputs break, and when the signature
    made does not verify with the leaf certificate's key.
    """
    if media_type not in (MEDIA_TYPE_JWS, MEDIA_TYPE_COSE):
        raise SigningError(
            f"unsupported envelope media type {media_type!r} ({MEDIA_TYPE_JWS} or {MEDIA_TYPE_COSE})"
        )
    signed_at = _utc_seconds(signing_time, what="the signing time")
    expires = None if expiry is None else _utc_seconds(expiry, what="the expiry")
    if expires is not None and expires <= signed_at:
        raise SigningError(
            f"the expiry {_rfc3339(expires)} is not after the signing time {_rfc3339(signed_at)}"
        )
    if not isinstance(signing_agent, str):
        raise SigningError("the signing agent must be a string")
    target = _target_artifact(subject)
    chain = tuple(chain)
    algorithm, leaf_key = _check_chain(chain, signer, signed_at)

    def sign(message: bytes) -> bytes:
        return _signature(signer, algorithm, leaf_key, message)

    build = _jws if media_type == MEDIA_TYPE_JWS else _cose
    data = build(
        target,
        algorithm=algorithm,
        chain=chain,
        signing_time=signed_at,
        expiry=expires,
        agent=signing_agent,
        sign=sign,
    )
    try:
        envelope = parse_envelope(media_type, data)
        envelope.verify()
    except EnvelopeError as e:
        raise SigningError(f"the envelope made does not verify: {e}") from None
    return SignedEnvelope(media_type, data, envelope)


# --------------------------------------------------------------------------------------- manifest


def build_signature_artifact(envelope: SignedEnvelope, subject: Descriptor) -> SignatureArtifact:
    """The signature manifest (current form) for *envelope*, which signs *subject*.

    The thumbprints and the ``created`` annotation come from the envelope (its chain and signing time),
    so the manifest always describes the envelope it carries. The manifest's ``subject`` is the
    descriptor's media type, digest and size (user metadata stays in the envelope). Raises
    :class:`SigningError` when the envelope signs another artifact.
    """
    signed = envelope.envelope
    if not signed.target_artifact.matches(subject):
        raise SigningError(f"the envelope signs {signed.target_artifact}, not {subject}")
    signed_at = signed.attributes.signing_time or signed.attributes.authentic_signing_time
    assert signed_at is not None  # the parser requires one of them
    annotations = {
        THUMBPRINT_ANNOTATION: json.dumps(
            list(chain_thumbprints(signed.certificate_chain)), separators=(",", ":")
        ),
        ANNOTATION_CREATED: _rfc3339(signed_at.astimezone(UTC)),
    }
    layer = envelope.descriptor
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": EMPTY_CONFIG.to_json(),
        "layers": [layer.to_json()],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": dict(sorted(annotations.items())),
    }
    data = _json(manifest)
    try:
        parse_signature_manifest(data)
    except SignatureManifestError as e:  # pragma: no cover - the shape above is the parser's
        raise SigningError(f"the signature manifest made is not valid: {e}") from None
    descriptor = Descriptor(
        MEDIA_TYPE_OCI_MANIFEST,
        digest_of(data),
        len(data),
        annotations=dict(sorted(annotations.items())),
        artifact_type=ARTIFACT_TYPE,
    )
    blobs = {EMPTY_CONFIG.digest: _EMPTY_CONFIG_BLOB, layer.digest: envelope.data}
    return SignatureArtifact(data, descriptor, blobs)


def sign_artifact(
    subject: Descriptor,
    signer: DigestSigner,
    chain: Sequence[x509.Certificate],
    *,
    signing_time: datetime,
    media_type: str = MEDIA_TYPE_JWS,
    expiry: datetime | None = None,
    signing_agent: str = SIGNING_AGENT,
    user_metadata: Mapping[str, str] | None = None,
) -> SignatureArtifact:
    """:func:`sign_envelope` then :func:`build_signature_artifact`: one call per signed digest.

    *user_metadata*, when given, is added to the subject's annotations (the payload's
    ``targetArtifact.annotations``); the manifest's ``subject`` never carries it.
    """
    if user_metadata:
        subject = Descriptor(
            subject.media_type,
            subject.digest,
            subject.size,
            annotations={**subject.annotations, **user_metadata},
            artifact_type=subject.artifact_type,
        )
    envelope = sign_envelope(
        subject,
        signer,
        chain,
        signing_time=signing_time,
        media_type=media_type,
        expiry=expiry,
        signing_agent=signing_agent,
    )
    return build_signature_artifact(envelope, subject)
