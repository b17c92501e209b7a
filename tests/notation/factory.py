"""Keys, certificates, envelopes and RFC 3161 tokens for the notar.notation tests (test-only signer).

Everything is built here from scratch so each rule can be broken one at a time; the real vectors in
tests/vectors/notation show the same shapes are what notation makes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from notar.notation import Descriptor
from notar.notation.cose import encode_sig_structure

#: The fixed clock of the tests: after every vector's signing time, before every certificate's expiry.
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SUBJECT = Descriptor(
    "application/vnd.oci.image.manifest.v1+json",
    "sha256:" + hashlib.sha256(b"subject manifest").hexdigest(),
    481,
)
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_KEYS: dict[str, PrivateKey] = {}


def key(kind: str = "ec256") -> PrivateKey:
    """A cached key: ``rsa2048``/``rsa3072``/``rsa4096``/``rsa1024``/``ec256``/``ec384``/``ec521``/``ec224``, ``-b`` suffix for a second one."""
    if kind not in _KEYS:
        base = kind.split("-")[0]
        if base.startswith("rsa"):
            _KEYS[kind] = rsa.generate_private_key(65537, int(base[3:]))
        else:
            curve = {
                "ec256": ec.SECP256R1(),
                "ec384": ec.SECP384R1(),
                "ec521": ec.SECP521R1(),
                "ec224": ec.SECP224R1(),
            }[base]
            _KEYS[kind] = ec.generate_private_key(curve)
    return _KEYS[kind]


def name(cn: str, *, o: str = "Notary", extra: list[x509.NameAttribute] | None = None) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
            *(extra or []),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def key_usage(**set_: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    flags.update(set_)
    return x509.KeyUsage(**flags)


@dataclass
class CertSpec:
    """What to put in a certificate; defaults make a valid code-signing leaf."""

    subject: x509.Name = field(default_factory=lambda: name("leaf"))
    ca: bool | None = None  # None: no basicConstraints
    basic_critical: bool = True
    path_length: int | None = None
    usage: x509.KeyUsage | None = field(default_factory=lambda: key_usage(digital_signature=True))
    usage_critical: bool = True
    eku: list[x509.ObjectIdentifier] | None = field(
        default_factory=lambda: [ExtendedKeyUsageOID.CODE_SIGNING]
    )
    eku_critical: bool = False
    not_before: datetime = datetime(2020, 1, 1, tzinfo=UTC)
    not_after: datetime = datetime(2120, 1, 1, tzinfo=UTC)
    hash: hashes.HashAlgorithm = field(default_factory=hashes.SHA256)
    ocsp: str | None = None
    crl: str | None = None


def ca_spec(cn: str = "root", **kw: Any) -> CertSpec:
    kw.setdefault("ca", True)
    kw.setdefault("usage", key_usage(key_cert_sign=True, crl_sign=True))
    kw.setdefault("eku", None)
    return CertSpec(subject=name(cn), **kw)


def tsa_spec(cn: str = "tsa", **kw: Any) -> CertSpec:
    kw.setdefault("eku", [ExtendedKeyUsageOID.TIME_STAMPING])
    kw.setdefault("eku_critical", True)
    return CertSpec(subject=name(cn), **kw)


def cert(
    spec: CertSpec, subject_key: PrivateKey, issuer: tuple[x509.Certificate, PrivateKey] | None = None
) -> x509.Certificate:
    """Issue a certificate for *subject_key* (self-signed without *issuer*)."""
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (spec.subject, subject_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(issuer_name)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    if spec.ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(spec.ca, spec.path_length), spec.basic_critical)
    if spec.usage is not None:
        builder = builder.add_extension(spec.usage, spec.usage_critical)
    if spec.eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(spec.eku), spec.eku_critical)
    if spec.ocsp:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(spec.ocsp)
                    )
                ]
            ),
            False,
        )
    if spec.crl:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(spec.crl)], None, None, None)]
            ),
            False,
        )
    return builder.sign(signing_key, spec.hash)


def chain(
    leaf_key: str = "ec256", *, leaf: CertSpec | None = None, root_key: str = "rsa3072"
) -> list[x509.Certificate]:
    """A valid leaf + root chain (the root is ``CN=root``)."""
    root = cert(ca_spec(), key(root_key))
    return [cert(leaf or CertSpec(), key(leaf_key), (root, key(root_key))), root]


def der(c: x509.Certificate) -> bytes:
    return c.public_bytes(Encoding.DER)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_signature(private: PrivateKey, alg: str, data: bytes) -> bytes:
    """Sign like Notation: RSA-PSS (salt = hash length) or ECDSA as fixed-width R||S."""
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    width = (private.curve.key_size + 7) // 8
    r, s = decode_dss_signature(private.sign(data, ec.ECDSA(digest)))
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def default_alg(private: PrivateKey) -> str:
    if isinstance(private, rsa.RSAPrivateKey):
        return {2048: "PS256", 3072: "PS384", 4096: "PS512"}.get(private.key_size, "PS256")
    return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(private.curve.name, "ES256")


def payload_for(subject: Descriptor = SUBJECT) -> bytes:
    return json.dumps({"targetArtifact": subject.to_json()}, separators=(",", ":"), sort_keys=True).encode()


def x509_protected(**over: Any) -> dict[str, Any]:
    """A notary.x509 JWS protected header; keys set to None are removed."""
    header: dict[str, Any] = {
        "alg": None,
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "crit": ["io.cncf.notary.signingScheme"],
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2026-12-01T10:00:00+01:00",
    }
    header.update(over)
    return {k: v for k, v in header.items() if v is not None}


def jws(
    private: PrivateKey,
    certs: list[x509.Certificate],
    *,
    subject: Descriptor = SUBJECT,
    protected: dict[str, Any] | None = None,
    payload: bytes | None = None,
    header: dict[str, Any] | None = None,
    alg: str | None = None,
    timestamp: Any = None,
) -> bytes:
    """A JWS envelope signed by *private* with x5c *certs*. *timestamp*: callable(signature) -> token."""
    prot = dict(protected if protected is not None else x509_protected())
    prot.setdefault("alg", alg or default_alg(private))
    prot_b64 = b64url(json.dumps(prot, separators=(",", ":")).encode())
    payload_b64 = b64url(payload if payload is not None else payload_for(subject))
    signature = raw_signature(private, prot["alg"], f"{prot_b64}.{payload_b64}".encode())
    unprotected: dict[str, Any] = {"x5c": [base64.b64encode(der(c)).decode() for c in certs]}
    unprotected["io.cncf.notary.signingAgent"] = "notar-tests"
    if timestamp is not None:
        unprotected["io.cncf.notary.timestampSignature"] = base64.b64encode(timestamp(signature)).decode()
    unprotected.update(header or {})
    env = {
        "payload": payload_b64,
        "protected": prot_b64,
        "header": unprotected,
        "signature": b64url(signature),
    }
    return json.dumps(env).encode()


COSE_ALG = {"PS256": -37, "PS384": -38, "PS512": -39, "ES256": -7, "ES384": -35, "ES512": -36}


def cose(
    private: PrivateKey,
    certs: list[x509.Certificate],
    *,
    subject: Descriptor = SUBJECT,
    protected: dict[Any, Any] | None = None,
    unprotected: dict[Any, Any] | None = None,
    alg: str | None = None,
    tag: int = 18,
) -> bytes:
    """A COSE_Sign1 envelope signed by *private*."""
    alg = alg or default_alg(private)
    prot: dict[Any, Any] = {
        1: COSE_ALG[alg],
        2: ["io.cncf.notary.signingScheme"],
        3: "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": cbor2.CBORTag(1, int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())),
    }
    if protected is not None:
        prot.update(protected)
        prot = {k: v for k, v in prot.items() if v is not None}
    prot_bytes = cbor2.dumps(prot)
    payload = payload_for(subject)
    signature = raw_signature(private, alg, encode_sig_structure(prot_bytes, payload))
    unprot: dict[Any, Any] = {33: [der(c) for c in certs], "io.cncf.notary.signingAgent": "notar-tests"}
    unprot.update(unprotected or {})
    return bytes(cbor2.dumps(cbor2.CBORTag(tag, [prot_bytes, unprot, payload, signature])))


def tsa_token(
    signature: bytes,
    tsa_cert: x509.Certificate,
    tsa_key: PrivateKey,
    *,
    gen_time: datetime,
    extra_certs: list[x509.Certificate] = (),  # type: ignore[assignment]
    imprint_of: bytes | None = None,
    accuracy_seconds: int | None = 1,
    signing_cert_v2: bool = True,
    tamper_tst: bool = False,
) -> bytes:
    """A minimal RFC 3161 timestamp token (CMS SignedData over a TSTInfo), SHA-256 throughout."""
    imprint = hashlib.sha256(signature if imprint_of is None else imprint_of).digest()
    tst: dict[str, Any] = {
        "version": "v1",
        "policy": "1.2.3.4.1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": imprint},
        "serial_number": 7,
        "gen_time": gen_time,
    }
    if accuracy_seconds is not None:
        tst["accuracy"] = {"seconds": accuracy_seconds}
    tst_der = tsp.TSTInfo(tst).dump()
    tsa_asn1 = ax509.Certificate.load(der(tsa_cert))
    attrs = [
        {"type": "content_type", "values": ["tst_info"]},
        {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
    ]
    if signing_cert_v2:
        attrs.append(
            {
                "type": "signing_certificate_v2",
                "values": [
                    {
                        "certs": [
                            {
                                "hash_algorithm": {"algorithm": "sha256"},
                                "cert_hash": hashlib.sha256(der(tsa_cert)).digest(),
                            }
                        ]
                    }
                ],
            }
        )
    signed_attrs = cms.CMSAttributes(attrs)
    to_sign = signed_attrs.dump()
    if isinstance(tsa_key, rsa.RSAPrivateKey):
        sig = tsa_key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        sig_alg = "sha256_rsa"
    else:
        sig = tsa_key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        sig_alg = "sha256_ecdsa"
    if tamper_tst:
        tst["serial_number"] = 8
        tst_der = tsp.TSTInfo(tst).dump()
    signer_info = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            {"issuer_and_serial_number": {"issuer": tsa_asn1.issuer, "serial_number": tsa_asn1.serial_number}}
        ),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_alg}),
        "signature": sig,
    }
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(tst_der)},
            "certificates": [tsa_asn1, *(ax509.Certificate.load(der(c)) for c in extra_certs)],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def later(days: int) -> datetime:
    return NOW + timedelta(days=days)


def sha1_resign(certificate: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate re-signed with SHA-1 (``cryptography`` no longer issues such certificates)."""
    parsed = ax509.Certificate.load(der(certificate))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = algos.SignedDigestAlgorithm({"algorithm": "sha1_rsa"})
    tbs_der = tbs.dump(force=True)
    signature = issuer_key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 (the point of the test)
    rebuilt = ax509.Certificate(
        {
            "tbs_certificate": ax509.TbsCertificate.load(tbs_der),
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha1_rsa"}),
            "signature_value": signature,
        }
    )
    return x509.load_der_x509_certificate(rebuilt.dump())
