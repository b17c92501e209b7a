"""The certificates notary wraps root (and some delegation) keys in."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from notar.crypto._keys import PrivateKey, PublicKey
from notar.crypto._pem import load_certificate_bundle
from notar.crypto.errors import CryptoError, UnsupportedKeyError

__all__ = ["CertificateProblem", "certificate_problems", "load_certificate_bundle", "make_root_certificate"]

ROOT_CERT_VALIDITY = timedelta(days=3650)
_SHA1_ALGORITHMS = (hashes.SHA1,)


class CertificateProblem(CryptoError):
    """A certificate is not acceptable as a TUF key (expired, SHA-1, wrong CN, ...)."""


def make_root_certificate(
    key: PrivateKey, gun: str, *, now: datetime, validity: timedelta = ROOT_CERT_VALIDITY
) -> PublicKey:
    """Self-sign a certificate for *key* the way notary does for root keys.

    Random 128-bit serial, subject = issuer = ``CN=<gun>``, valid from *now* for ten years, key usage
    digitalSignature + keyEncipherment (critical), extended key usage codeSigning, CA:FALSE (critical),
    signed with SHA-256. Returns the ``ecdsa-x509``/``rsa-x509`` TUF key holding the certificate PEM.
    """
    priv = key.crypto
    if not isinstance(priv, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UnsupportedKeyError("root certificates need an ECDSA or RSA key")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gun)])
    start = now.replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(priv.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1)
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
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
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(priv, hashes.SHA256())
    )
    return PublicKey.from_certificate(cert)


def _common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def certificate_problems(
    cert: x509.Certificate, *, now: datetime | None = None, gun: str | None = None
) -> list[str]:
    """What makes *cert* unacceptable to notary, empty when it is fine.

    Checks (as notary's ``ValidateCertificate`` and root validation do): not signed with SHA-1, RSA keys
    of at least 2048 bits, and, when *now* is given, not yet valid more than a day ahead or expired; when
    *gun* is given, ``CN == gun`` or a wildcard ``prefix*`` CN matching the GUN.
    """
    problems = []
    algo = cert.signature_hash_algorithm
    if algo is None or isinstance(algo, _SHA1_ALGORITHMS):
        problems.append("certificate uses an unsupported (SHA-1 or unknown) signature algorithm")
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey) and pub.key_size < 2048:
        problems.append(f"certificate RSA key is too short ({pub.key_size} bits)")
    if now is not None:
        if cert.not_valid_before_utc > now + timedelta(days=1):
            problems.append(f"certificate is not valid before {cert.not_valid_before_utc.isoformat()}")
        if cert.not_valid_after_utc < now:
            problems.append(f"certificate expired at {cert.not_valid_after_utc.isoformat()}")
    if gun is not None:
        cn = _common_name(cert)
        if not (cn == gun or (cn.endswith("*") and gun.startswith(cn[:-1]))):
            problems.append(f"certificate CN {cn!r} does not match {gun!r}")
    return problems
