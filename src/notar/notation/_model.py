"""What both envelope formats parse into, and the rules they share.

A JWS and a COSE envelope carry the same things under different spellings: a signature algorithm, a
content type, a ``crit`` list, the Notary signed attributes (signing scheme, signing time or authentic
signing time, expiry), a certificate chain, an optional RFC 3161 token, and a payload naming the signed
artifact. :mod:`notar.notation.jws` and :mod:`notar.notation.cose` read their format and call
:func:`signed_attributes` and :func:`read_payload` here, so the rules are written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from notar.encoding import EncodingError, loads_strict
from notar.notation.descriptor import Descriptor, check_keys
from notar.notation.errors import EnvelopeError

__all__ = [
    "HEADER_AUTHENTIC_SIGNING_TIME",
    "HEADER_EXPIRY",
    "HEADER_SIGNING_AGENT",
    "HEADER_SIGNING_SCHEME",
    "HEADER_SIGNING_TIME",
    "HEADER_TIMESTAMP_SIGNATURE",
    "MAX_CHAIN_LENGTH",
    "MAX_ENVELOPE_SIZE",
    "MEDIA_TYPE_COSE",
    "MEDIA_TYPE_JWS",
    "PAYLOAD_CONTENT_TYPE",
    "Algorithm",
    "Envelope",
    "SignedAttributes",
    "SigningScheme",
    "algorithm_for_key",
    "load_chain",
    "read_payload",
    "signed_attributes",
]

MEDIA_TYPE_JWS = "application/jose+json"
MEDIA_TYPE_COSE = "application/cose"
PAYLOAD_CONTENT_TYPE = "application/vnd.cncf.notary.payload.v1+json"
#: Envelopes larger than this are refused before parsing (Notary Project limit).
MAX_ENVELOPE_SIZE = 32 * 1024 * 1024
#: Longer ``x5c`` chains are refused before any certificate is parsed: real chains have 1 to 4
#: certificates, and each one costs a signature check in the authenticity step.
MAX_CHAIN_LENGTH = 16

HEADER_SIGNING_SCHEME = "io.cncf.notary.signingScheme"
HEADER_SIGNING_TIME = "io.cncf.notary.signingTime"
HEADER_AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
HEADER_EXPIRY = "io.cncf.notary.expiry"
HEADER_TIMESTAMP_SIGNATURE = "io.cncf.notary.timestampSignature"
HEADER_SIGNING_AGENT = "io.cncf.notary.signingAgent"

#: The attributes a verifier understands; any other name listed in ``crit`` fails verification
#: (``signingTime`` need not be critical, but a signer may mark it so).
_UNDERSTOOD_CRITICAL = frozenset(
    {HEADER_SIGNING_SCHEME, HEADER_SIGNING_TIME, HEADER_AUTHENTIC_SIGNING_TIME, HEADER_EXPIRY}
)
_NOTARY_ATTRIBUTES = frozenset(
    {HEADER_SIGNING_SCHEME, HEADER_SIGNING_TIME, HEADER_AUTHENTIC_SIGNING_TIME, HEADER_EXPIRY}
)


class Algorithm(StrEnum):
    """The six signature algorithms Notation allows (JWS names; COSE maps its integers onto them)."""

    PS256 = "PS256"
    PS384 = "PS384"
    PS512 = "PS512"
    ES256 = "ES256"
    ES384 = "ES384"
    ES512 = "ES512"

    @property
    def hash(self) -> hashes.HashAlgorithm:
        """The digest the algorithm signs with (SHA-256/384/512)."""
        bits = self.value[2:]
        return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[bits]


class SigningScheme(StrEnum):
    """``notary.x509`` (signing time is a claim) or ``notary.x509.signingAuthority`` (it is authentic)."""

    X509 = "notary.x509"
    X509_SIGNING_AUTHORITY = "notary.x509.signingAuthority"


def algorithm_for_key(key: object) -> Algorithm | None:
    """The one algorithm a leaf key may sign with: RSA 2048/3072/4096 -> PS256/384/512, P-256/384/521 -> ES256/384/512."""
    if isinstance(key, rsa.RSAPublicKey):
        return {2048: Algorithm.PS256, 3072: Algorithm.PS384, 4096: Algorithm.PS512}.get(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": Algorithm.ES256, "secp384r1": Algorithm.ES384, "secp521r1": Algorithm.ES512}.get(
            key.curve.name
        )
    return None


@dataclass(frozen=True)
class SignedAttributes:
    """The protected (signed) Notary attributes of an envelope.

    ``signing_time`` is set for ``notary.x509`` (a claim of the signer, not authentic);
    ``authentic_signing_time`` for ``notary.x509.signingAuthority``. ``extended`` holds every other
    protected attribute by name (COSE integer labels as decimal strings); ``critical`` the ``crit`` list.
    """

    signing_scheme: SigningScheme
    signing_time: datetime | None
    authentic_signing_time: datetime | None
    expiry: datetime | None
    critical: tuple[str, ...]
    extended: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """A parsed (not yet verified) signature envelope.

    ``signed_bytes`` are the exact bytes the signature covers (JWS signing input or COSE
    ``Sig_structure``); ``signature`` is the raw signature value (ECDSA as fixed-width R||S), which is
    also what an RFC 3161 token in ``timestamp_token`` timestamps.
    """

    media_type: str
    algorithm: Algorithm
    content_type: str
    attributes: SignedAttributes
    payload: bytes
    target_artifact: Descriptor
    certificate_chain: tuple[x509.Certificate, ...]
    signature: bytes
    signed_bytes: bytes
    timestamp_token: bytes | None = None
    signing_agent: str | None = None

    @property
    def leaf(self) -> x509.Certificate:
        """The signing certificate (first of ``x5c``)."""
        return self.certificate_chain[0]

    def verify(self) -> None:
        """Check the algorithm against the leaf key and the signature over ``signed_bytes``.

        Raises :class:`EnvelopeError` (one line) when the leaf key's type and size do not call for
        ``algorithm`` or the signature does not verify. RSA-PSS uses MGF1 with the same hash and a salt
        as long as the hash (RFC 7518 / RFC 8230); ECDSA signatures are fixed-width ``R || S``.
        """
        try:
            key = self.leaf.public_key()
        except (ValueError, UnsupportedAlgorithm) as e:
            raise EnvelopeError(f"signing certificate public key cannot be read: {e}") from e
        expected = algorithm_for_key(key)
        if expected is None:
            raise EnvelopeError(
                f"signing certificate key ({_describe_key(key)}) is not supported by Notation"
            )
        if expected is not self.algorithm:
            raise EnvelopeError(
                f"algorithm {self.algorithm} does not match the signing key ({_describe_key(key)} needs {expected})"
            )
        digest = self.algorithm.hash
        try:
            if isinstance(key, rsa.RSAPublicKey):
                pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
                key.verify(self.signature, self.signed_bytes, pss, digest)
            else:
                assert isinstance(key, ec.EllipticCurvePublicKey)
                width = (key.curve.key_size + 7) // 8
                if len(self.signature) != 2 * width:
                    raise EnvelopeError(
                        f"ECDSA signature is {len(self.signature)} bytes; {self.algorithm} needs R||S of {2 * width}"
                    )
                r = int.from_bytes(self.signature[:width], "big")
                s = int.from_bytes(self.signature[width:], "big")
                key.verify(encode_dss_signature(r, s), self.signed_bytes, ec.ECDSA(digest))
        except InvalidSignature as e:
            raise EnvelopeError("signature does not verify with the signing certificate's key") from e


def _describe_key(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def load_chain(ders: Sequence[bytes], *, what: str) -> tuple[x509.Certificate, ...]:
    """Parse the DER certificates of ``x5c``/``x5chain`` (leaf first): 1 to :data:`MAX_CHAIN_LENGTH`."""
    if not ders:
        raise EnvelopeError(f"{what}: the certificate chain is empty")
    if len(ders) > MAX_CHAIN_LENGTH:
        raise EnvelopeError(f"{what}: {len(ders)} certificates in the chain; at most {MAX_CHAIN_LENGTH}")
    chain = []
    for i, der in enumerate(ders):
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except ValueError as e:
            raise EnvelopeError(f"{what}: certificate {i} is not a DER certificate ({e})") from e
    return tuple(chain)


def signed_attributes(
    protected: Mapping[str, Any], critical: Sequence[str], *, what: str, time: Any
) -> SignedAttributes:
    """Apply the Notary rules to the protected attributes (format-specific keys already removed).

    *protected* maps attribute names to raw values; *time* converts a raw time value to an aware
    datetime or raises :class:`EnvelopeError`. Rules: the signing scheme is present and known;
    ``notary.x509`` needs ``signingTime`` and forbids ``authenticSigningTime``, ``signingAuthority``
    the reverse; ``expiry`` is after the signing time; ``crit`` has no duplicates, lists only
    attributes that are present, lists the signing scheme and, when present, ``expiry`` and
    ``authenticSigningTime``, and lists nothing a verifier does not understand.
    """
    scheme_value = protected.get(HEADER_SIGNING_SCHEME)
    if scheme_value is None:
        raise EnvelopeError(f"{what}: {HEADER_SIGNING_SCHEME} is missing")
    try:
        scheme = SigningScheme(scheme_value)
    except ValueError:
        raise EnvelopeError(f"{what}: unsupported signing scheme {scheme_value!r}") from None
    signing_time = time(protected[HEADER_SIGNING_TIME]) if HEADER_SIGNING_TIME in protected else None
    authentic = (
        time(protected[HEADER_AUTHENTIC_SIGNING_TIME]) if HEADER_AUTHENTIC_SIGNING_TIME in protected else None
    )
    expiry = time(protected[HEADER_EXPIRY]) if HEADER_EXPIRY in protected else None
    if scheme is SigningScheme.X509:
        if signing_time is None:
            raise EnvelopeError(f"{what}: {HEADER_SIGNING_TIME} is required by {scheme}")
        if authentic is not None:
            raise EnvelopeError(f"{what}: {HEADER_AUTHENTIC_SIGNING_TIME} is not allowed with {scheme}")
    else:
        if authentic is None:
            raise EnvelopeError(f"{what}: {HEADER_AUTHENTIC_SIGNING_TIME} is required by {scheme}")
        if signing_time is not None:
            raise EnvelopeError(f"{what}: {HEADER_SIGNING_TIME} is not allowed with {scheme}")
    signed_at = signing_time or authentic
    if expiry is not None and signed_at is not None and expiry <= signed_at:
        raise EnvelopeError(f"{what}: expiry {expiry.isoformat()} is not after the signing time")

    if len(set(critical)) != len(critical):
        raise EnvelopeError(f"{what}: crit lists a header more than once")
    for name in critical:
        if name not in protected:
            raise EnvelopeError(f"{what}: {name!r} is marked critical but not present")
        if name not in _UNDERSTOOD_CRITICAL:
            raise EnvelopeError(f"{what}: unsupported critical header {name!r}")
    must = [HEADER_SIGNING_SCHEME] + [
        h for h in (HEADER_EXPIRY, HEADER_AUTHENTIC_SIGNING_TIME) if h in protected
    ]
    missing = [h for h in must if h not in critical]
    if missing:
        raise EnvelopeError(f"{what}: {', '.join(missing)} must be marked critical")
    extended = {k: v for k, v in protected.items() if k not in _NOTARY_ATTRIBUTES}
    return SignedAttributes(scheme, signing_time, authentic, expiry, tuple(critical), extended)


def read_payload(payload: bytes, *, what: str) -> Descriptor:
    """The ``targetArtifact`` descriptor of a Notary payload (``{"targetArtifact": {...}}``)."""
    try:
        value = loads_strict(payload, what=f"{what} payload")
    except EncodingError as e:
        raise EnvelopeError(str(e)) from e
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} payload: expected a JSON object")
    check_keys(value, frozenset({"targetArtifact"}), what=f"{what} payload", error=EnvelopeError)
    if "targetArtifact" not in value:
        raise EnvelopeError(f"{what} payload: targetArtifact is missing")
    return Descriptor.from_json(
        value["targetArtifact"], what=f"{what} payload targetArtifact", error=EnvelopeError
    )
