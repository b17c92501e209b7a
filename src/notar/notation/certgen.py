"""Signing certificates that meet the Notary Project rules: self-signed, or issued by a CA the caller holds.

Notation verifies a signature through the certificate chain in its envelope (``x5c``), so a key needs a
certificate before it can sign. This module makes one for an existing key, pure (the clock is passed in),
and proves the result with the verifier's own rulebook (:func:`~notar.notation.certs.signing_chain_problems`)
before returning it.

The leaf is what ``notation cert generate-test`` makes, with a random 159-bit serial:

* ``keyUsage`` critical, ``digitalSignature`` only;
* ``extendedKeyUsage`` ``codeSigning`` (not critical, as Go writes it);
* ``basicConstraints`` critical, ``cA`` false;
* ``subjectKeyIdentifier``; ``authorityKeyIdentifier`` when a CA issues it;
* signed with SHA-256 (RSA issuers) or the hash that fits the issuer's curve (SHA-256/384/512 for
  P-256/384/521); valid from *now* (to the second) for *days* days.

A CA-issued chain is the leaf followed by the CA's chain as given (issuing CA first, root last): the
Notary Project requires ``x5c`` to end with a self-signed root. The CA must be valid now and outlive
the leaf. Errors are :class:`~notar.notation.errors.CertificateRequestError` with a one-line message
that names the rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from notar.notation._model import algorithm_for_key
from notar.notation.certs import signing_chain_problems, validity_problems
from notar.notation.errors import CertificateRequestError, TrustPolicyError
from notar.notation.policy import parse_distinguished_name

__all__ = [
    "MAX_DAYS",
    "SUBJECT_ATTRIBUTES",
    "issue_signing_certificate",
    "parse_subject",
    "self_signed_signing_certificate",
]

#: The longest validity asked for (100 years, like the notation e2e certificate).
MAX_DAYS = 36525
#: Subject attribute short names accepted by :func:`parse_subject` (Go's names; dotted OIDs also work).
SUBJECT_ATTRIBUTES = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "STREET": NameOID.STREET_ADDRESS,
    "POSTALCODE": NameOID.POSTAL_CODE,
}
_DOTTED_OID = re.compile(r"[0-9]+(?:\.[0-9]+)+\Z")

SigningPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
IssuerPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def parse_subject(text: str) -> x509.Name:
    """``"C=US,ST=WA,O=Acme,CN=alice"`` -> an X.509 name with the attributes in the order written.

    The syntax is the one trust policies use for ``x509.subject`` identities (RFC 4514 escapes, no
    multi-valued RDNs, no repeated attribute), so what a policy names is what the certificate holds.
    """
    try:
        attributes = parse_distinguished_name(text, what="subject")
    except TrustPolicyError as e:
        raise CertificateRequestError(str(e)) from None
    out = []
    for kind, value in attributes.items():
        oid = SUBJECT_ATTRIBUTES.get(kind)
        if oid is None:
            if not _DOTTED_OID.match(kind):
                names = ", ".join(SUBJECT_ATTRIBUTES)
                raise CertificateRequestError(
                    f"subject: unknown attribute {kind} (use {names} or a dotted OID)"
                )
            oid = x509.ObjectIdentifier(kind)
        if not value:
            raise CertificateRequestError(f"subject: {kind} is empty")
        try:
            out.append(x509.NameAttribute(oid, value))
        except ValueError as e:  # e.g. a country name that is not two letters
            raise CertificateRequestError(f"subject: {kind}={value!r}: {e}") from None
    return x509.Name(out)


def _signing_hash(key: IssuerPrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size == 384:
            return hashes.SHA384()
        if key.curve.key_size == 521:
            return hashes.SHA512()
    return hashes.SHA256()


def _check_subject_key(key: object) -> SigningPublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey) or algorithm_for_key(key) is None:
        described = (
            f"RSA {key.key_size}"
            if isinstance(key, rsa.RSAPublicKey)
            else f"EC {key.curve.name}"
            if isinstance(key, ec.EllipticCurvePublicKey)
            else type(key).__name__.removesuffix("PublicKey").removeprefix("_") or "this"
        )
        raise CertificateRequestError(
            f"{described} keys cannot sign Notation signatures (RSA 2048/3072/4096 or EC P-256/P-384/P-521)"
        )
    return key


def _validity(now: datetime, days: int) -> tuple[datetime, datetime]:
    if now.tzinfo is None or now.utcoffset() is None:
        raise CertificateRequestError("the clock must be a timezone-aware datetime")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise CertificateRequestError(f"validity must be 1 to {MAX_DAYS} days, got {days}")
    start = now.astimezone(UTC).replace(microsecond=0)
    return start, start + timedelta(days=days)


def _builder(
    public_key: SigningPublicKey, subject: x509.Name, issuer: x509.Name, start: datetime, end: datetime
) -> x509.CertificateBuilder:
    if not list(subject):
        raise CertificateRequestError("subject: the certificate needs at least one attribute (CN=...)")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _checked(chain: tuple[x509.Certificate, ...]) -> tuple[x509.Certificate, ...]:
    problems = signing_chain_problems(chain)
    if problems:
        text = "; ".join(str(p) for p in problems[:3])
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise CertificateRequestError(f"the chain breaks the Notary Project certificate rules: {text}{more}")
    return chain


def self_signed_signing_certificate(
    key: IssuerPrivateKey, *, subject: x509.Name, now: datetime, days: int
) -> tuple[x509.Certificate, ...]:
    """A self-signed code-signing certificate for *key* (the chain of one certificate)."""
    public_key = _check_subject_key(key.public_key())
    start, end = _validity(now, days)
    cert = _builder(public_key, subject, subject, start, end).sign(key, _signing_hash(key))
    return _checked((cert,))


def _same_key(a: object, b: object) -> bool:
    def spki(key: object) -> bytes | None:
        public_bytes = getattr(key, "public_bytes", None)
        if public_bytes is None:
            return None
        data = public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return data if isinstance(data, bytes) else None

    return spki(a) is not None and spki(a) == spki(b)


def issue_signing_certificate(
    public_key: object,
    *,
    subject: x509.Name,
    now: datetime,
    days: int,
    ca_chain: Sequence[x509.Certificate],
    ca_key: IssuerPrivateKey,
) -> tuple[x509.Certificate, ...]:
    """A code-signing certificate for *public_key* issued by the CA (``ca_chain[0]``, key *ca_key*).

    Returns the full chain: the new leaf, then *ca_chain* (issuing CA first, self-signed root last).
    Refused: a CA key that is not the CA certificate's, a CA chain not valid at *now*, a leaf that
    would outlive the CA chain, and any chain that breaks the Notary Project rules.
    """
    subject_key = _check_subject_key(public_key)
    start, end = _validity(now, days)
    ca_chain = tuple(ca_chain)
    if not ca_chain:
        raise CertificateRequestError("the CA certificate file holds no certificate")
    ca = ca_chain[0]
    try:
        ca_public = ca.public_key()
    except (ValueError, UnsupportedAlgorithm) as e:
        raise CertificateRequestError(f"the CA certificate's public key cannot be read: {e}") from None
    if not _same_key(ca_public, ca_key.public_key()):
        raise CertificateRequestError(
            f"the CA key is not the key of the CA certificate ({ca.subject.rfc4514_string()})"
        )
    expired = validity_problems(ca_chain, start)
    if expired:
        raise CertificateRequestError(f"the CA chain is not valid now: {expired[0]}")
    ca_end = min(c.not_valid_after_utc for c in ca_chain)
    if end > ca_end:
        longest = (ca_end - start).days
        raise CertificateRequestError(
            f"the CA chain expires at {ca_end.isoformat()}, before the {days} days asked"
            f" (at most {longest} days)"
        )
    builder = _builder(subject_key, subject, ca.subject, start, end)
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        if not isinstance(ca_public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise CertificateRequestError("the CA key must be an RSA or EC key") from None
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public)
    leaf = builder.add_extension(aki, critical=False).sign(ca_key, _signing_hash(ca_key))
    return _checked((leaf, *ca_chain))
