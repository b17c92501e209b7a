from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from notar.crypto import (
    InvalidKeyError,
    PrivateKey,
    PublicKey,
    Signer,
    UnsupportedKeyError,
    certificate_problems,
    load_certificate_bundle,
    make_root_certificate,
)
from notar.encoding import b64encode

NOW = datetime.now(UTC)


def all_metadata_keys(vectors: Path) -> dict[str, dict[str, object]]:
    keys: dict[str, dict[str, object]] = {}
    for path in vectors.rglob("*.json"):
        if "http-captures" in path.parts or path.name == "keys.json":
            continue
        doc = json.loads(path.read_bytes())
        signed = doc.get("signed") if isinstance(doc, dict) else None
        if not isinstance(signed, dict):
            continue
        keys.update(signed.get("keys") or {})
        keys.update((signed.get("delegations") or {}).get("keys") or {})
    return keys


def test_key_ids_of_every_vector_key(vectors: Path) -> None:
    keys = all_metadata_keys(vectors)
    assert len(keys) > 10
    types = set()
    for kid, value in keys.items():
        key = PublicKey.from_dict(value)
        types.add(key.keytype)
        assert key.key_id == kid
        assert key.to_dict() == value
    assert types == {"ecdsa", "ecdsa-x509", "ed25519"}


def test_canonical_id_of_certificate_keys_names_the_private_file(vectors: Path) -> None:
    # from the vectors README: root.json f651e91b... <-> private/b89b5040....key
    root = json.loads((vectors / "notary-cli/server/01-targets-only/root.json").read_bytes())
    key = PublicKey.from_dict(
        root["signed"]["keys"]["f651e91b26fc605afff7d617b9ae9a5dfbeeb2a24f3159bc14295e1fca3b39d7"]
    )
    assert key.is_certificate
    assert key.canonical_key_id == "b89b5040d6d35681dda9fd3e2eed010dad9c9104f88eaad6f9fe6cc5c17f548a"
    assert (vectors / "notary-cli/client/trust/private" / f"{key.canonical_key_id}.key").exists()
    assert key.bare().keytype == "ecdsa"
    # a delegation added from a certificate: targets.json 8066ea99... <-> private/13740498....key
    found = {
        PublicKey.from_dict(v).canonical_key_id
        for k, v in all_metadata_keys(vectors).items()
        if k.startswith("8066ea99")
    }
    assert found == {"1374049837d749f640711844a21d677608f5fb16440b48eae9a439515e3cc703"}


@pytest.mark.parametrize("keytype", ["ecdsa", "ed25519", "rsa"])
def test_sign_verify(keytype: str) -> None:
    key = PrivateKey.generate(keytype)
    assert isinstance(key, Signer)
    method, sig = key.sign(b"message")
    assert method == {"ecdsa": "ecdsa", "ed25519": "eddsa", "rsa": "rsapss"}[keytype]
    pub = key.public_key
    assert pub.verify(b"message", sig, method)
    assert pub.verify(b"message", sig, method.upper())  # notary lower-cases the method
    assert not pub.verify(b"messagE", sig, method)
    assert not pub.verify(b"message", sig[:-1] + bytes([sig[-1] ^ 1]), method)
    assert not pub.verify(b"message", sig, "bogus")
    assert pub.key_id == pub.canonical_key_id == key.key_id
    assert "PRIVATE" not in repr(key) and keytype in repr(key)


def test_ecdsa_signatures_are_raw_r_s() -> None:
    key = PrivateKey.generate()
    method, sig = key.sign(b"m")
    assert len(sig) == 64
    assert not key.public_key.verify(b"m", sig + b"\x00", method)
    assert not key.public_key.verify(b"m", sig[:63], method)
    # a DER signature is not accepted
    der = key.crypto.sign(b"m", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]
    assert not key.public_key.verify(b"m", der, "ecdsa")


def test_method_must_fit_the_key() -> None:
    ec_key, ed_key = PrivateKey.generate("ecdsa"), PrivateKey.generate("ed25519")
    _, sig = ed_key.sign(b"m")
    assert not ec_key.public_key.verify(b"m", sig, "eddsa")
    assert not ed_key.public_key.verify(b"m", sig, "ecdsa")


def test_rsa_pkcs1v15_and_small_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric import padding

    big = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = PublicKey.from_crypto(big.public_key())
    sig = big.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    assert pub.verify(b"m", sig, "rsapkcs1v15")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - must be refused
    with pytest.raises(UnsupportedKeyError):
        PrivateKey(small)
    small_pub = PublicKey.from_crypto(small.public_key())
    assert not small_pub.verify(b"m", small.sign(b"m", padding.PKCS1v15(), hashes.SHA256()), "rsapkcs1v15")


def test_unknown_and_broken_keys_verify_nothing() -> None:
    assert not PublicKey("rsa-ssa", b"xx").verify(b"m", b"s" * 64, "ecdsa")
    assert not PublicKey("ecdsa", b"not der").verify(b"m", b"s" * 64, "ecdsa")
    assert not PublicKey("ed25519", b"short").verify(b"m", b"s" * 64, "eddsa")
    with pytest.raises(InvalidKeyError):
        PublicKey("ecdsa", b"not der").to_crypto()
    with pytest.raises(UnsupportedKeyError):
        PublicKey("gpg", b"x").to_crypto()
    with pytest.raises(UnsupportedKeyError):
        PrivateKey.generate("dsa")


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {},
        {"keytype": "ecdsa"},
        {"keytype": "", "keyval": {"public": "AA=="}},
        {"keytype": "ecdsa", "keyval": {"public": 5}},
        {"keytype": "ecdsa", "keyval": {"public": "!!"}},
        {"keytype": "ecdsa", "keyval": {"public": "AA==", "private": "AA=="}},
    ],
)
def test_malformed_key_objects(value: object) -> None:
    with pytest.raises(InvalidKeyError):
        PublicKey.from_dict(value)


def test_root_certificate_like_notary() -> None:
    key = PrivateKey.generate()
    pub = make_root_certificate(key, "example.com/team/app", now=NOW)
    assert pub.keytype == "ecdsa-x509"
    assert pub.public.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert pub.public.endswith(b"\n-----END CERTIFICATE-----\n")
    assert pub.canonical_key_id == key.key_id != pub.key_id
    (cert,) = load_certificate_bundle(pub.public)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "example.com/team/app" and cert.issuer == cert.subject
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=3650)
    assert cert.serial_number.bit_length() <= 128
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
    assert (
        ExtendedKeyUsageOID.CODE_SIGNING
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    cert.verify_directly_issued_by(cert)
    assert certificate_problems(cert, now=NOW, gun="example.com/team/app") == []
    method, sig = key.sign(b"m")
    assert pub.verify(b"m", sig, method)

    rsa_pub = make_root_certificate(PrivateKey.generate("rsa"), "g", now=NOW)
    assert rsa_pub.keytype == "rsa-x509" and rsa_pub.bare().keytype == "rsa"
    with pytest.raises(UnsupportedKeyError):
        make_root_certificate(PrivateKey.generate("ed25519"), "g", now=NOW)


def test_certificate_problems() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "docker.io/library/*")])

    def cert(start: datetime, days: int) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .sign(key, hashes.SHA256())
        )

    good = cert(NOW - timedelta(days=1), 10)
    assert certificate_problems(good, now=NOW, gun="docker.io/library/alpine") == []  # wildcard CN
    assert certificate_problems(good, now=NOW, gun="docker.io/other/alpine")
    assert certificate_problems(cert(NOW - timedelta(days=20), 10), now=NOW)
    assert certificate_problems(cert(NOW + timedelta(days=2), 10), now=NOW)
    assert certificate_problems(cert(NOW + timedelta(hours=12), 10), now=NOW) == []  # a day of leeway
    assert certificate_problems(cert(NOW - timedelta(days=20), 10), now=None) == []  # expiry not checked


def test_public_key_pem_files(vectors: Path) -> None:
    alice = PublicKey.from_pem((vectors / "docker-cli/keys/alice.pub").read_bytes())
    assert alice.keytype == "ecdsa"
    assert (vectors / "docker-cli/docker-config/trust/private" / f"{alice.key_id}.key").exists()
    cert_key = PublicKey.from_pem((vectors / "notary-cli/client/keys/alice.crt").read_bytes())
    assert cert_key.keytype == "ecdsa-x509"
    with pytest.raises(InvalidKeyError):
        PublicKey.from_pem(b"nothing here")
    with pytest.raises(InvalidKeyError):
        PublicKey.from_pem(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
    with pytest.raises(InvalidKeyError):
        PublicKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_key_object_shape() -> None:
    pub = PrivateKey.generate("ed25519").public_key
    assert pub.to_dict() == {
        "keytype": "ed25519",
        "keyval": {"private": None, "public": b64encode(pub.public)},
    }
    assert len(pub.public) == 32
