"""The certificate rules of the Notary Project signature specification, as data.

:func:`signing_chain_problems` checks a signing chain (``x5c``: leaf first, root last) and returns every
rule it breaks, empty when the chain is acceptable; :func:`timestamping_chain_problems` does the same
for the chain of an RFC 3161 timestamping authority. Verification uses them in the *authenticity*
step; a certificate generator can run them on what it made to prove it meets the rules. Validity
periods are a separate question (:func:`validity_problems`): the verifier asks it at the time the
*authentic timestamp* step settles on, a generator asks it for "now".

Rules for a signing chain (codeSigning purpose):

* **Leaf**: ``keyUsage`` present, marked critical, with ``digitalSignature`` and none of
  ``keyEncipherment``, ``dataEncipherment``, ``keyAgreement``, ``keyCertSign``, ``cRLSign``,
  ``encipherOnly``, ``decipherOnly``; ``extendedKeyUsage`` absent, or listing ``codeSigning`` and none
  of ``anyExtendedKeyUsage``, ``serverAuth``, ``clientAuth``, ``emailProtection``, ``timeStamping``,
  ``OCSPSigning``; ``basicConstraints``, when present, with ``cA`` false.
* **CA certificates** (every certificate after the leaf): ``basicConstraints`` present, critical, with
  ``cA`` true and a ``pathLenConstraint`` (if any) not smaller than the number of CA certificates
  below; ``keyUsage`` present, critical, with ``keyCertSign``.
* **Chain**: each certificate's issuer name is the next one's subject and its signature verifies with
  the next one's key; the last is self-signed (issuer = subject, signature verifies with its own key).
  A chain of one certificate is a self-signed leaf: leaf rules, and self-signed.
* **Every certificate**: RSA keys of at least 2048 bits, EC keys on P-256, P-384 or P-521 (at least 256
  bits; no other key types); signed with SHA-256, SHA-384 or SHA-512 (never SHA-1 or MD5);
  ``notBefore`` not after ``notAfter``.

Problems are :class:`ChainProblem` values (position in the chain, subject, message), not exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "ChainProblem",
    "is_self_signed",
    "signing_chain_problems",
    "subject_text",
    "timestamping_chain_problems",
    "validity_problems",
    "verify_issued_by",
]

_ALLOWED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_FORBIDDEN_LEAF_USAGES = (
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)
_FORBIDDEN_CODE_SIGNING_EKUS = {
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


@dataclass(frozen=True)
class ChainProblem:
    """One broken rule: the certificate's position (0 = leaf), its subject, and what is wrong."""

    index: int
    subject: str
    message: str

    def __str__(self) -> str:
        return f"certificate {self.index} ({self.subject}): {self.message}"


def subject_text(cert: x509.Certificate) -> str:
    """The subject as RFC 4514 text (``CN=e2e,O=Notary,...``), for messages."""
    try:
        return cert.subject.rfc4514_string()
    except ValueError:  # an attribute value that cannot be rendered
        return "<unprintable subject>"


def verify_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """``None`` when *issuer*'s name and key issued *cert*, else why not (one line)."""
    if cert.issuer.public_bytes() != issuer.subject.public_bytes():
        return f"issuer {cert.issuer.rfc4514_string()!r} is not the subject of the next certificate"
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return "signature does not verify with the issuer's key"
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        return f"signature cannot be checked ({e})"
    return None


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the certificate's signature verifies with its own key."""
    return verify_issued_by(cert, cert) is None


def _extension(
    cert: x509.Certificate, cls: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def _common_problems(cert: x509.Certificate) -> list[str]:
    out = []
    try:
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algo = None
    if not isinstance(algo, _ALLOWED_HASHES):
        name = algo.name if algo is not None else "an unsupported algorithm"
        out.append(f"signed with {name}; only SHA-256, SHA-384 and SHA-512 are allowed")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return [*out, "public key cannot be read"]
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            out.append(f"RSA key of {key.key_size} bits; at least 2048 are required")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _ALLOWED_CURVES):
            out.append(f"EC key on {key.curve.name}; only P-256, P-384 and P-521 are allowed")
    else:
        out.append(f"unsupported key type {type(key).__name__}; only RSA and EC keys are allowed")
    if cert.not_valid_before_utc > cert.not_valid_after_utc:
        out.append("notBefore is after notAfter")
    return out


def _key_usage(cert: x509.Certificate) -> tuple[x509.KeyUsage | None, list[str]]:
    ext = _extension(cert, x509.KeyUsage)
    if ext is None:
        return None, ["keyUsage extension is missing"]
    if not ext.critical:
        return None, ["keyUsage extension is not marked critical"]
    assert isinstance(ext.value, x509.KeyUsage)
    return ext.value, []


def _leaf_problems(cert: x509.Certificate) -> list[str]:
    out = []
    usage, problems = _key_usage(cert)
    out.extend(problems)
    if usage is not None:
        if not usage.digital_signature:
            out.append("keyUsage lacks digitalSignature")
        for name in _FORBIDDEN_LEAF_USAGES:
            try:
                present = bool(getattr(usage, name))
            except ValueError:  # encipher_only/decipher_only are undefined without keyAgreement
                present = False
            if present:
                out.append(f"keyUsage must not include {_camel(name)}")
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if eku is not None:
        assert isinstance(eku.value, x509.ExtendedKeyUsage)
        purposes = list(eku.value)
        if ExtendedKeyUsageOID.CODE_SIGNING not in purposes:
            out.append("extendedKeyUsage is present without codeSigning")
        out.extend(
            f"extendedKeyUsage must not include {name}"
            for oid, name in _FORBIDDEN_CODE_SIGNING_EKUS.items()
            if oid in purposes
        )
    basic = _extension(cert, x509.BasicConstraints)
    if basic is not None:
        assert isinstance(basic.value, x509.BasicConstraints)
        if basic.value.ca:
            out.append("basicConstraints cA is true on a signing (leaf) certificate")
    return out


def _ca_problems(cert: x509.Certificate, cas_below: int) -> list[str]:
    out = []
    basic = _extension(cert, x509.BasicConstraints)
    if basic is None:
        out.append("basicConstraints extension is missing on a CA certificate")
    else:
        assert isinstance(basic.value, x509.BasicConstraints)
        if not basic.critical:
            out.append("basicConstraints extension is not marked critical")
        if not basic.value.ca:
            out.append("basicConstraints cA is false on a CA certificate")
        elif basic.value.path_length is not None and basic.value.path_length < cas_below:
            out.append(
                f"pathLenConstraint {basic.value.path_length} is less than the {cas_below} CA(s) below it"
            )
    usage, problems = _key_usage(cert)
    out.extend(problems)
    if usage is not None and not usage.key_cert_sign:
        out.append("keyUsage lacks keyCertSign on a CA certificate")
    return out


def _camel(name: str) -> str:
    special = {"crl_sign": "cRLSign"}
    if name in special:
        return special[name]
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _chain_problems(chain: Sequence[x509.Certificate], leaf_rules: list[str] | None) -> list[ChainProblem]:
    """Common, leaf (*leaf_rules*, else the code-signing ones), CA and issuance rules of a chain."""
    if not chain:
        return [ChainProblem(0, "-", "the certificate chain is empty")]
    problems: list[ChainProblem] = []

    def add(i: int, messages: list[str]) -> None:
        problems.extend(ChainProblem(i, subject_text(chain[i]), m) for m in messages)

    last = len(chain) - 1
    for i, cert in enumerate(chain):
        add(i, _common_problems(cert))
        if i == 0:
            add(i, leaf_rules if leaf_rules is not None else _leaf_problems(cert))
        elif i > 0:
            add(i, _ca_problems(cert, i - 1))
        if i < last:
            why = verify_issued_by(cert, chain[i + 1])
            if why is not None:
                add(i, [f"not issued by the next certificate: {why}"])
        else:
            why = verify_issued_by(cert, cert)
            if why is not None:
                add(i, [f"the last certificate of the chain must be self-signed: {why}"])
    return problems


def signing_chain_problems(chain: Sequence[x509.Certificate]) -> list[ChainProblem]:
    """Every rule a code-signing chain (leaf first, root last) breaks; empty when it is acceptable.

    Validity periods are not checked here: see :func:`validity_problems`.
    """
    return _chain_problems(chain, None)


def timestamping_chain_problems(chain: Sequence[x509.Certificate]) -> list[ChainProblem]:
    """Every rule an RFC 3161 TSA chain (TSA certificate first, root last) breaks.

    The TSA certificate must have an ``extendedKeyUsage`` extension marked critical whose only purpose
    is ``timeStamping`` (RFC 3161 section 2.3) and, when it has ``keyUsage``, ``digitalSignature`` or
    ``nonRepudiation``; the CA and chain rules are those of the signing chain.
    """
    if not chain:
        return [ChainProblem(0, "-", "the TSA certificate chain is empty")]
    leaf = chain[0]
    rules = []
    eku = _extension(leaf, x509.ExtendedKeyUsage)
    if eku is None:
        rules.append("extendedKeyUsage is missing on the TSA certificate")
    else:
        assert isinstance(eku.value, x509.ExtendedKeyUsage)
        if not eku.critical:
            rules.append("extendedKeyUsage of the TSA certificate is not marked critical")
        if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
            rules.append("extendedKeyUsage of the TSA certificate must be timeStamping only")
    usage_ext = _extension(leaf, x509.KeyUsage)
    if usage_ext is not None:
        assert isinstance(usage_ext.value, x509.KeyUsage)
        if not (usage_ext.value.digital_signature or usage_ext.value.content_commitment):
            rules.append("keyUsage of the TSA certificate lacks digitalSignature and nonRepudiation")
    return _chain_problems(chain, rules)


def validity_problems(chain: Sequence[x509.Certificate], at: datetime) -> list[ChainProblem]:
    """Certificates of *chain* not valid at *at* (an aware datetime), one problem each."""
    out = []
    for i, cert in enumerate(chain):
        if at < cert.not_valid_before_utc:
            out.append(
                ChainProblem(
                    i, subject_text(cert), f"not valid before {cert.not_valid_before_utc.isoformat()}"
                )
            )
        elif at > cert.not_valid_after_utc:
            out.append(
                ChainProblem(i, subject_text(cert), f"expired at {cert.not_valid_after_utc.isoformat()}")
            )
    return out
