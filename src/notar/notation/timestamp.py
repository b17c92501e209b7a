"""RFC 3161 timestamp tokens over a Notation signature (``io.cncf.notary.timestampSignature``).

A timestamping authority (TSA) signs "this hash existed at ``genTime``". Notation asks one for the hash
of the envelope's signature value and stores the token (a CMS ``SignedData`` holding a ``TSTInfo``) in
the unprotected header. Verified here, with ``asn1crypto`` for the ASN.1 and ``cryptography`` for keys:

1. ``ContentInfo`` is ``signedData``; its encapsulated content type is ``id-ct-TSTInfo``; exactly one
   ``SignerInfo``; the ``TSTInfo`` is version 1.
2. ``messageImprint`` = SHA-256/384/512 of the envelope's signature bytes.
3. Signed attributes are present: ``contentType`` = TSTInfo, ``messageDigest`` = digest of the
   encapsulated ``TSTInfo`` bytes, and ``signingCertificateV2`` (or ``signingCertificate``) whose first
   entry hashes to the signer certificate (RFC 2634 / RFC 5816).
4. The signer certificate (found in the token by issuer and serial or by key identifier) verifies the
   signature over the DER ``SET OF`` signed attributes (RSA PKCS#1 v1.5, RSA-PSS or ECDSA).
5. The TSA chain is built from the signer up to a self-signed root from the token's certificates and
   the trusted TSA certificates; one certificate of it must be byte-identical to a trusted one; it must
   meet :func:`~notar.notation.certs.timestamping_chain_problems` and be valid at ``genTime``.

The result is the time *range* ``genTime ± accuracy``; a signing chain is valid at the timestamp when it
is valid over the whole range. Revocation of the TSA chain is not checked (no network here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from notar.notation.certs import timestamping_chain_problems, validity_problems, verify_issued_by
from notar.notation.errors import TimestampError

__all__ = ["Timestamp", "verify_timestamp_token"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_MAX_CHAIN = 8
_MAX_TOKEN_CERTS = 16
_DER = Encoding.DER


@dataclass(frozen=True)
class Timestamp:
    """A verified timestamp: ``gen_time`` ± ``accuracy``, and the TSA chain (TSA first, root last)."""

    gen_time: datetime
    accuracy: timedelta
    tsa_chain: tuple[x509.Certificate, ...]

    @property
    def earliest(self) -> datetime:
        """The earliest instant the timestamp allows."""
        return self.gen_time - self.accuracy

    @property
    def latest(self) -> datetime:
        """The latest instant the timestamp allows."""
        return self.gen_time + self.accuracy


def _digest(name: str, data: bytes, *, what: str) -> bytes:
    if name not in _HASHES:
        raise TimestampError(f"timestamp token: {what} uses unsupported digest {name!r} (SHA-256/384/512)")
    return hashlib.new(name, data).digest()


def _attribute(signed_attrs: Any, name: str) -> Any | None:
    found = [a for a in signed_attrs if a["type"].native == name]
    if len(found) > 1:
        raise TimestampError(f"timestamp token: signed attribute {name} appears more than once")
    if not found:
        return None
    values = found[0]["values"]
    if len(values) != 1:
        raise TimestampError(f"timestamp token: signed attribute {name} must have one value")
    return values[0]


def _find_signer(sid: Any, certs: list[Any]) -> Any:
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if (
                cert.issuer == sid.chosen["issuer"]
                and cert.serial_number == sid.chosen["serial_number"].native
            ):
                return cert
        elif sid.name == "subject_key_identifier" and cert.key_identifier == sid.chosen.native:
            return cert
    raise TimestampError("timestamp token: the signer certificate is not in the token")


def _check_signing_certificate(signed_attrs: Any, signer_der: bytes) -> None:
    v2 = _attribute(signed_attrs, "signing_certificate_v2")
    if v2 is not None:
        first = v2["certs"][0]
        algorithm = first["hash_algorithm"]["algorithm"].native
        expected = _digest(algorithm, signer_der, what="signingCertificateV2")
    else:
        v1 = _attribute(signed_attrs, "signing_certificate")
        if v1 is None:
            raise TimestampError(
                "timestamp token: signingCertificateV2 (or signingCertificate) attribute is missing"
            )
        first = v1["certs"][0]
        # ESSCertID (v1) is SHA-1 by definition; it identifies the certificate, it signs nothing.
        expected = hashlib.sha1(signer_der, usedforsecurity=False).digest()
    if first["cert_hash"].native != expected:
        raise TimestampError("timestamp token: signingCertificate does not name the signer certificate")


def _verify_signer(signer_info: Any, cert: x509.Certificate, signed: bytes) -> None:
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise TimestampError(f"timestamp token: unsupported signer digest {digest_name!r}")
    digest = _HASHES[digest_name]()
    algorithm = signer_info["signature_algorithm"]
    signature = signer_info["signature"].native
    try:
        key = cert.public_key()
        kind = algorithm.signature_algo
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), digest)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = algorithm["parameters"]
            pss_hash = params["hash_algorithm"]["algorithm"].native
            mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
            if pss_hash not in _HASHES or mgf_hash not in _HASHES:
                raise TimestampError("timestamp token: unsupported RSA-PSS parameters")
            pss = padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=params["salt_length"].native)
            key.verify(signature, signed, pss, _HASHES[pss_hash]())
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(digest))
        else:
            raise TimestampError(f"timestamp token: signature algorithm {kind!r} does not fit the TSA key")
    except InvalidSignature as e:
        raise TimestampError("timestamp token: the TSA signature does not verify") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise TimestampError(f"timestamp token: the TSA signature cannot be checked ({e})") from e


def _build_chain(
    signer: x509.Certificate, pool: Sequence[x509.Certificate], trusted: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    trusted_ders = {c.public_bytes(_DER) for c in trusted}
    candidates = list(pool) + list(trusted)
    chain = [signer]
    while len(chain) <= _MAX_CHAIN:
        current = chain[-1]
        if verify_issued_by(current, current) is None:  # self-signed root reached
            break
        issuer = next(
            (c for c in candidates if c not in chain and verify_issued_by(current, c) is None), None
        )
        if issuer is None:
            break
        chain.append(issuer)
    if not any(c.public_bytes(_DER) in trusted_ders for c in chain):
        raise TimestampError(
            "timestamp token: the TSA certificate does not chain to a trusted TSA certificate"
        )
    return tuple(chain)


def verify_timestamp_token(token: bytes, signature: bytes, trusted: Sequence[x509.Certificate]) -> Timestamp:
    """Verify an RFC 3161 token over *signature* against *trusted* TSA certificates (module docstring).

    Raises :class:`TimestampError` with one line saying what failed.
    """
    if not trusted:
        raise TimestampError("timestamp token: no trusted TSA certificates")
    try:
        info = cms.ContentInfo.load(token, strict=True)
        if info["content_type"].native != "signed_data":
            raise TimestampError("timestamp token: not a CMS SignedData")
        signed_data = info["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampError("timestamp token: encapsulated content is not a TSTInfo")
        content = encap["content"]
        if not isinstance(content, core.OctetString | core.ParsableOctetString) or content.method != 0:
            raise TimestampError("timestamp token: TSTInfo is missing or not a primitive OCTET STRING")
        tst_bytes = content.contents
        tst = tsp.TSTInfo.load(tst_bytes, strict=True)
        if tst["version"].native != "v1":
            raise TimestampError("timestamp token: TSTInfo version is not 1")
        imprint = tst["message_imprint"]
        expected = _digest(imprint["hash_algorithm"]["algorithm"].native, signature, what="messageImprint")
        if imprint["hashed_message"].native != expected:
            raise TimestampError("timestamp token: messageImprint does not match the signature")
        gen_time = tst["gen_time"].native
        accuracy = timedelta()
        if tst["accuracy"].native is not None:
            acc = tst["accuracy"]
            accuracy = timedelta(
                seconds=acc["seconds"].native or 0,
                milliseconds=acc["millis"].native or 0,
                microseconds=acc["micros"].native or 0,
            )

        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise TimestampError(f"timestamp token: expected one SignerInfo, found {len(signer_infos)}")
        signer_info = signer_infos[0]
        signed_attrs = signer_info["signed_attrs"]
        if not isinstance(signed_attrs, cms.CMSAttributes) or len(signed_attrs) == 0:
            raise TimestampError("timestamp token: signed attributes are missing")
        content_type = _attribute(signed_attrs, "content_type")
        if content_type is None or content_type.native != "tst_info":
            raise TimestampError("timestamp token: contentType attribute is not TSTInfo")
        message_digest = _attribute(signed_attrs, "message_digest")
        digest_name = signer_info["digest_algorithm"]["algorithm"].native
        if message_digest is None or message_digest.native != _digest(
            digest_name, tst_bytes, what="SignerInfo"
        ):
            raise TimestampError("timestamp token: messageDigest attribute does not match the TSTInfo")

        token_certs = [c.chosen for c in signed_data["certificates"] or [] if c.name == "certificate"]
        if len(token_certs) > _MAX_TOKEN_CERTS:
            raise TimestampError(
                f"timestamp token: {len(token_certs)} certificates; at most {_MAX_TOKEN_CERTS}"
            )
        signer_asn1 = _find_signer(signer_info["sid"], token_certs)
        signer_der = signer_asn1.dump()
        _check_signing_certificate(signed_attrs, signer_der)
        signed_attrs_der = signed_attrs.dump()
        signed_bytes = b"\x31" + signed_attrs_der[1:]  # [0] IMPLICIT SET OF -> SET OF, as signed
        pool = [x509.load_der_x509_certificate(c.dump()) for c in token_certs]
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        raise TimestampError(f"timestamp token: malformed ({e})") from e

    signer = x509.load_der_x509_certificate(signer_der)
    _verify_signer(signer_info, signer, signed_bytes)
    chain = _build_chain(signer, pool, trusted)
    problems = timestamping_chain_problems(chain)
    if problems:
        raise TimestampError(f"timestamp token: TSA chain: {problems[0]}")
    if not isinstance(gen_time, datetime):
        raise TimestampError("timestamp token: genTime is not a time")
    gen_time = gen_time.astimezone(UTC)
    expired = validity_problems(chain, gen_time)
    if expired:
        raise TimestampError(f"timestamp token: TSA chain at genTime: {expired[0]}")
    return Timestamp(gen_time, accuracy, chain)
