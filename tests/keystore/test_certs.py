"""Certificate chains beside private keys: ``private/<key ID>.crt``, unseen by notary and docker."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from notar.crypto import PrivateKey
from notar.keystore import (
    CertificateExistsError,
    CertificateFileError,
    CertificateMismatchError,
    FileKeyStore,
    KeyNotFoundError,
    decode_certificate_chain,
    encode_certificate_chain,
    same_public_key,
)
from tests.keystore.conftest import constant

PASS = "store passphrase"


def self_signed(key: PrivateKey, cn: str = "signer", days: int = 30) -> x509.Certificate:
    crypto = key.crypto
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(crypto.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(crypto, None if key.keytype == "ed25519" else hashes.SHA256())  # type: ignore[arg-type]
    )


def store(tmp_path: Path) -> FileKeyStore:
    return FileKeyStore(tmp_path / "trust", constant(PASS))


def test_chain_is_kept_beside_the_key_and_read_back(tmp_path: Path) -> None:
    ks = store(tmp_path)
    key = PrivateKey.generate("ecdsa")
    key_path = ks.add(key, role="alice")
    cert = self_signed(key)
    path = ks.add_certificate_chain(key.key_id, [cert])
    assert path == key_path.with_suffix(".crt") == ks.certificate_path(key.key_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(ks.private_dir.stat().st_mode) == 0o700
    assert path.read_bytes() == cert.public_bytes(serialization.Encoding.PEM)
    # a fresh store (no unlocked key, no passphrase) reads it
    fresh = FileKeyStore(ks.trust_dir, constant("wrong"))
    assert fresh.certificate_chain(key.key_id) == (cert,)
    info = fresh.certificate_info(key.key_id)
    assert info is not None and info.leaf == cert and info.subject == "CN=signer"
    assert info.not_after == cert.not_valid_after_utc
    # the key listing is unchanged: .crt files are not keys
    assert [i.key_id for i in fresh.list()] == [key.key_id]
    assert [i.key_id for i in fresh.find("alice")] == [key.key_id] and fresh.find("bob") == []


def test_no_chain_is_none(tmp_path: Path) -> None:
    ks = store(tmp_path)
    key = PrivateKey.generate("ecdsa")
    ks.add(key, role="alice")
    assert ks.certificate_chain(key.key_id) is None and ks.certificate_info(key.key_id) is None


def test_leaf_must_certify_the_key(tmp_path: Path) -> None:
    ks = store(tmp_path)
    key, other = PrivateKey.generate("ecdsa"), PrivateKey.generate("ecdsa")
    ks.add(key, role="alice")
    with pytest.raises(CertificateMismatchError, match="does not certify the alice key"):
        ks.add_certificate_chain(key.key_id, [self_signed(other)])
    with pytest.raises(CertificateFileError, match="empty"):
        ks.add_certificate_chain(key.key_id, [])
    with pytest.raises(KeyNotFoundError):
        ks.add_certificate_chain(other.key_id, [self_signed(other)])
    assert not ks.certificate_path(key.key_id).exists()


def test_replacing_needs_to_be_asked_for(tmp_path: Path) -> None:
    ks = store(tmp_path)
    key = PrivateKey.generate("ecdsa")
    ks.add(key, role="alice")
    first, second = self_signed(key, "one"), self_signed(key, "two")
    ks.add_certificate_chain(key.key_id, [first])
    with pytest.raises(CertificateExistsError, match="already has a certificate"):
        ks.add_certificate_chain(key.key_id, [second])
    assert ks.certificate_chain(key.key_id) == (first,)
    ks.add_certificate_chain(key.key_id, [second], replace=True)
    assert ks.certificate_chain(key.key_id) == (second,)


def test_removing_the_key_removes_its_chain(tmp_path: Path) -> None:
    ks = store(tmp_path)
    key = PrivateKey.generate("ecdsa")
    ks.add(key, role="alice")
    ks.add_certificate_chain(key.key_id, [self_signed(key)])
    ks.remove(key.key_id)
    assert not ks.certificate_path(key.key_id).exists()
    assert ks.remove_certificate_chain(key.key_id) is False


def test_a_broken_stored_chain_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    ks = store(tmp_path)
    key = PrivateKey.generate("ecdsa")
    ks.add(key, role="alice")
    path = ks.certificate_path(key.key_id)
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateFileError) as e:
        ks.certificate_chain(key.key_id)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no PEM CERTIFICATE block"),
        (b"hello", "no PEM CERTIFICATE block"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid certificate"),
        (b"-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n", "invalid base64"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "is 'PRIVATE KEY', not a CERTIFICATE",
        ),
    ],
)
def test_decoding_refuses_what_is_not_a_chain(data: bytes, message: str) -> None:
    with pytest.raises(CertificateFileError, match=message):
        decode_certificate_chain(data, what="chain.pem")


def test_decoding_keeps_order_and_ignores_text_between_blocks() -> None:
    a, b = PrivateKey.generate("ecdsa"), PrivateKey.generate("ecdsa")
    ca, cb = self_signed(a, "a"), self_signed(b, "b")
    data = b"subject=CN=a\n" + encode_certificate_chain([ca]) + b"\nissuer\n" + encode_certificate_chain([cb])
    assert decode_certificate_chain(data, what="x") == (ca, cb)
    too_many = encode_certificate_chain([ca] * 17)
    with pytest.raises(CertificateFileError, match="at most 16"):
        decode_certificate_chain(too_many, what="x")


def test_same_public_key(keys: dict[str, PrivateKey]) -> None:
    for key in keys.values():
        cert = self_signed(key)
        assert same_public_key(cert, key.public_key)
        assert not same_public_key(cert, PrivateKey.generate("ecdsa").public_key)


@pytest.mark.peers
def test_notary_lists_the_same_keys_with_chains_beside_them(tmp_path: Path) -> None:
    """notary 0.7 reads every ``*.key`` in private/ and nothing else: a ``.crt`` beside changes nothing."""
    notary = shutil.which("notary")
    assert notary is not None, "notary CLI not installed (scripts/install-peers.sh)"
    ks = store(tmp_path)
    key = PrivateKey.generate("ecdsa")
    ks.add(key, role="targets/alice")

    def listing() -> str:
        env = {**os.environ, "HOME": str(tmp_path)}
        cmd = [notary, "-d", str(ks.trust_dir), "key", "list"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, timeout=60).stdout

    before = listing()
    assert key.key_id in before
    ks.add_certificate_chain(key.key_id, [self_signed(key)])
    after = listing()
    assert after == before
