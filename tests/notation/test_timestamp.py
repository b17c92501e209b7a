"""RFC 3161 timestamp tokens: made here (asn1crypto) and, when available, by ``openssl ts``."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from notar.notation import TimestampError, verify_timestamp_token
from tests.notation import factory as f

SIGNATURE = b"the envelope signature"
ROOT_KEY = "rsa2048-b"
ROOT = f.cert(f.ca_spec("tsa-root"), f.key(ROOT_KEY))


def tsa(kind: str = "ec384-b", **spec: object) -> object:
    return f.cert(f.tsa_spec(**spec), f.key(kind), (ROOT, f.key(ROOT_KEY)))  # type: ignore[arg-type]


TSA = tsa()


def token(**kw: object) -> bytes:
    kw.setdefault("gen_time", f.NOW)
    return f.tsa_token(SIGNATURE, kw.pop("cert", TSA), f.key(kw.pop("kind", "ec384-b")), **kw)  # type: ignore[arg-type]


def test_a_valid_token() -> None:
    stamp = verify_timestamp_token(token(), SIGNATURE, [ROOT])
    assert stamp.gen_time == f.NOW
    assert stamp.earliest == f.NOW - timedelta(seconds=1) and stamp.latest == f.NOW + timedelta(seconds=1)
    assert stamp.tsa_chain == (TSA, ROOT)


def test_an_rsa_tsa_and_no_accuracy() -> None:
    rsa_tsa = tsa("rsa3072-b")
    stamp = verify_timestamp_token(
        token(cert=rsa_tsa, kind="rsa3072-b", accuracy_seconds=None), SIGNATURE, [ROOT]
    )
    assert stamp.accuracy == timedelta()


def test_the_token_may_carry_the_root_and_the_store_may_hold_the_tsa_certificate() -> None:
    assert verify_timestamp_token(token(extra_certs=[ROOT]), SIGNATURE, [ROOT]).tsa_chain == (TSA, ROOT)
    assert verify_timestamp_token(token(extra_certs=[ROOT]), SIGNATURE, [TSA]).tsa_chain == (TSA, ROOT)


@pytest.mark.parametrize(
    ("kw", "signature", "match"),
    [
        ({}, b"another signature", "messageImprint does not match the signature"),
        ({"tamper_tst": True}, SIGNATURE, "messageDigest attribute does not match the TSTInfo"),
        (
            {"signing_cert_v2": False},
            SIGNATURE,
            "signingCertificateV2 \\(or signingCertificate\\) attribute is missing",
        ),
        (
            {"gen_time": datetime(2019, 1, 1, tzinfo=UTC)},
            SIGNATURE,
            "TSA chain at genTime: .*not valid before",
        ),
    ],
)
def test_token_failures(kw: dict[str, object], signature: bytes, match: str) -> None:
    with pytest.raises(TimestampError, match=match):
        verify_timestamp_token(token(**kw), signature, [ROOT])


def test_untrusted_and_unfit_tsa_certificates() -> None:
    other_root = f.cert(f.ca_spec("other-root"), f.key("rsa3072-b"))
    with pytest.raises(TimestampError, match="does not chain to a trusted TSA certificate"):
        verify_timestamp_token(token(), SIGNATURE, [other_root])
    with pytest.raises(TimestampError, match="no trusted TSA certificates"):
        verify_timestamp_token(token(), SIGNATURE, [])
    code_signing = tsa(eku=[ExtendedKeyUsageOID.CODE_SIGNING], eku_critical=False)
    with pytest.raises(TimestampError, match="extendedKeyUsage of the TSA certificate"):
        verify_timestamp_token(token(cert=code_signing), SIGNATURE, [ROOT])
    wrong_key = tsa("ec256")  # certificate for another key than the one that signs
    with pytest.raises(TimestampError, match="signature does not verify|signature algorithm"):
        verify_timestamp_token(token(cert=wrong_key), SIGNATURE, [ROOT])


def test_garbage_is_a_malformed_token() -> None:
    with pytest.raises(TimestampError, match="malformed"):
        verify_timestamp_token(b"\x30\x03\x02\x01\x01", SIGNATURE, [ROOT])
    with pytest.raises(TimestampError, match="malformed"):
        verify_timestamp_token(b"not DER", SIGNATURE, [ROOT])


_TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = {serial}
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.2
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = {ess}
ordering = no
tsa_name = no
"""


@pytest.mark.parametrize("ess", ["sha256", "sha1"])  # signingCertificateV2 and signingCertificate (v1)
def test_tokens_made_by_openssl_ts_verify(tmp_path: Path, ess: str) -> None:
    """An independent TSA implementation: ``openssl ts -reply`` over the same bytes."""
    rsa_tsa = tsa("rsa3072-b")
    pem = serialization.Encoding.PEM
    (tmp_path / "tsa.pem").write_bytes(rsa_tsa.public_bytes(pem))  # type: ignore[attr-defined]
    (tmp_path / "root.pem").write_bytes(ROOT.public_bytes(pem))
    (tmp_path / "tsa.key").write_bytes(
        f.key("rsa3072-b").private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "serial").write_text("01\n")
    (tmp_path / "tsa.cnf").write_text(_TSA_CONFIG.format(serial=tmp_path / "serial", ess=ess))
    (tmp_path / "sig.bin").write_bytes(SIGNATURE)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", "ts", *args], cwd=tmp_path, capture_output=True, check=True)

    openssl("-query", "-data", "sig.bin", "-sha384", "-cert", "-out", "req.tsq")
    openssl(
        "-reply", "-config", "tsa.cnf", "-queryfile", "req.tsq", "-signer", "tsa.pem", "-inkey", "tsa.key",
        "-chain", "root.pem", "-token_out", "-out", "token.der",
    )  # fmt: skip
    made = (tmp_path / "token.der").read_bytes()
    stamp = verify_timestamp_token(made, SIGNATURE, [ROOT])
    assert abs(stamp.gen_time - datetime.now(UTC)) < timedelta(minutes=5)  # openssl stamps the real clock
    assert stamp.accuracy == timedelta(seconds=1)
    with pytest.raises(TimestampError, match="messageImprint"):
        verify_timestamp_token(made, SIGNATURE + b"!", [ROOT])
