"""A self-signed code-signing certificate signed *through* a :class:`~notar.crypto.DigestSigner`.

``cryptography``'s ``CertificateBuilder`` signs only with a private key it holds; a KMS key never leaves
KMS. So the ``TBSCertificate`` is assembled here with asn1crypto, its DER is hashed, the signer signs the
digest (``MessageType=DIGEST``), and the certificate is ``SEQUENCE {tbs, algorithm, signature}``.

The certificate is the one :func:`notar.notation.certgen.self_signed_signing_certificate` makes (what
``notation cert generate-test`` makes): v3, random 159-bit serial, ``basicConstraints`` critical
``cA=false``, ``keyUsage`` critical ``digitalSignature`` only, ``extendedKeyUsage`` ``codeSigning``,
``subjectKeyIdentifier``; signed with ECDSA and the hash of the key's curve (P-256: SHA-256, P-384:
SHA-384, P-521: SHA-512) or RSASSA-PSS/SHA-256 (MGF1-SHA-256, salt 32; what KMS ``RSASSA_PSS_SHA_256``
makes). It is parsed back, its self-signature verified, and checked with the Notary Project rules
(:func:`~notar.notation.signing_chain_problems`) before it is returned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import algos as a_algos
from asn1crypto import keys as a_keys
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notar.crypto import CryptoError, DigestSigner
from notar.notation import CertificateRequestError, signing_chain_problems
from notar.notation.certgen import MAX_DAYS

__all__ = ["self_signed_signing_certificate"]

_EC_HASHES = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}
_GENERALIZED_FROM = datetime(2050, 1, 1, tzinfo=UTC)  # RFC 5280: UTCTime before 2050, else GeneralizedTime


def _time(value: datetime) -> a_x509.Time:
    return a_x509.Time({"general_time" if value >= _GENERALIZED_FROM else "utc_time": value})


def _algorithm(
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
) -> tuple[hashes.HashAlgorithm, dict[str, Any]]:
    """The hash the signer signs and the X.509 signature AlgorithmIdentifier that names it."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        digest = _EC_HASHES[key.curve.key_size]
        return digest, {"algorithm": f"{digest.name}_ecdsa"}
    digest = hashes.SHA256()
    params = {
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        "salt_length": digest.digest_size,
        "trailer_field": "trailer_field_bc",
    }
    return digest, {"algorithm": "rsassa_pss", "parameters": params}


def self_signed_signing_certificate(
    signer: DigestSigner, *, subject: x509.Name, now: datetime, days: int
) -> tuple[x509.Certificate, ...]:
    """A self-signed code-signing certificate for *signer*'s key, signed by *signer* (one signature).

    Raises :class:`~notar.notation.CertificateRequestError` (one line) for a key Notation cannot use, a
    bad subject or validity, and a certificate that does not verify or breaks the Notary Project rules.
    Errors of the signer itself (a KMS denial, say) propagate unchanged.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise CertificateRequestError("the clock must be a timezone-aware datetime")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise CertificateRequestError(f"validity must be 1 to {MAX_DAYS} days, got {days}")
    if not list(subject):
        raise CertificateRequestError("subject: the certificate needs at least one attribute (CN=...)")
    try:
        public = signer.public_key.to_crypto()
    except CryptoError as e:
        raise CertificateRequestError(f"the signer's public key cannot be read: {e}") from None
    if not (
        (isinstance(public, ec.EllipticCurvePublicKey) and public.curve.key_size in _EC_HASHES)
        or (isinstance(public, rsa.RSAPublicKey) and public.key_size in (2048, 3072, 4096))
    ):
        raise CertificateRequestError(
            "this key cannot sign Notation signatures (RSA 2048/3072/4096 or EC P-256/P-384/P-521)"
        )
    assert isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    start = now.astimezone(UTC).replace(microsecond=0)
    end = start + timedelta(days=days)
    digest_algorithm, signature_algorithm = _algorithm(public)
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    name = a_x509.Name.load(subject.public_bytes())
    ski = x509.SubjectKeyIdentifier.from_public_key(public).digest
    tbs = a_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": x509.random_serial_number(),
            "signature": signature_algorithm,
            "issuer": name,
            "validity": {"not_before": _time(start), "not_after": _time(end)},
            "subject": name,
            "subject_public_key_info": a_keys.PublicKeyInfo.load(spki),
            "extensions": [
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
                {"extn_id": "key_usage", "critical": True, "extn_value": {"digital_signature"}},
                {"extn_id": "extended_key_usage", "critical": False, "extn_value": ["code_signing"]},
                {"extn_id": "key_identifier", "critical": False, "extn_value": ski},
            ],
        }
    )
    tbs_der = tbs.dump()
    h = hashes.Hash(digest_algorithm)
    h.update(tbs_der)
    signature = signer.sign_digest(h.finalize(), digest_algorithm)
    der = a_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": a_algos.SignedDigestAlgorithm(signature_algorithm),
            "signature_value": signature,
        }
    ).dump()
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as e:  # pragma: no cover - the structure above is fixed
        raise CertificateRequestError(f"the certificate made cannot be parsed: {e}") from None
    problems = signing_chain_problems((cert,))
    if problems:
        text = "; ".join(str(p) for p in problems[:3])
        raise CertificateRequestError(
            f"the certificate signed by key {signer.public_key.key_id[:7]} breaks the Notary "
            f"Project certificate rules: {text}"
        )
    return (cert,)
