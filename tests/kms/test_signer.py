"""KmsSigner against an in-process fake: the DIGEST request, DER -> R||S, key specs, every error in one
line, bounded retries; then against the lab KMS, a real HTTP endpoint that signs digests as AWS does."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from notar.crypto import METHOD_ECDSA, DigestSigner, PublicKey, Signer, ecdsa_raw_to_der
from notar.kms import (
    KmsAccessDeniedError,
    KmsError,
    KmsKeySpecError,
    KmsKeyStateError,
    KmsKeyUsageError,
    KmsSignatureError,
    KmsSigner,
    KmsThrottledError,
    KmsUnavailableError,
    RetryPolicy,
)
from tests.kms.fakes import FakeKms, client_error

URI = "awskms:///alias/release-signer"
NO_WAIT = RetryPolicy(attempts=4, sleep=lambda _s: None)
BIG = b'{"signed": "a targets file"}' * 1000  # far over RAW's 4,096-byte cap


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def opened(key: Any = None, **kw: Any) -> tuple[KmsSigner, FakeKms]:
    fake = FakeKms(key if key is not None else p256(), **kw)
    return KmsSigner.open(URI, client=fake, retry=NO_WAIT), fake


def test_protocols_and_key_id() -> None:
    key = p256()
    signer, fake = opened(key)
    assert isinstance(signer, Signer) and isinstance(signer, DigestSigner)
    assert signer.public_key == PublicKey.from_crypto(key.public_key())  # the Notary key ID of any ECDSA key
    assert signer.key_spec == "ECC_NIST_P256" and fake.count("GetPublicKey") == 1


def test_v1_signature_is_one_digest_call_and_r_s() -> None:
    key = p256()
    signer, fake = opened(key)
    method, raw = signer.sign(BIG)
    assert method == METHOD_ECDSA and len(raw) == 64
    ((_, params),) = [c for c in fake.calls if c[0] == "Sign"]
    assert params == {
        "KeyId": "alias/release-signer",
        "Message": hashlib.sha256(BIG).digest(),
        "MessageType": "DIGEST",
        "SigningAlgorithm": "ECDSA_SHA_256",
    }
    # independent check over the *message* (not the digest): what notary and docker verify
    key.public_key().verify(ecdsa_raw_to_der(raw), BIG, ec.ECDSA(hashes.SHA256()))
    assert signer.public_key.verify(BIG, raw, METHOD_ECDSA)
    assert signer.sign_calls == 1


@pytest.mark.parametrize(
    ("curve", "digest", "algorithm"),
    [
        (ec.SECP256R1(), hashes.SHA256(), "ECDSA_SHA_256"),
        (ec.SECP384R1(), hashes.SHA384(), "ECDSA_SHA_384"),
        (ec.SECP521R1(), hashes.SHA512(), "ECDSA_SHA_512"),
    ],
)
def test_ecdsa_digest_signatures_are_der(
    curve: ec.EllipticCurve, digest: hashes.HashAlgorithm, algorithm: str
) -> None:
    key = ec.generate_private_key(curve)
    signer, fake = opened(key)
    h = hashes.Hash(digest)
    h.update(b"payload")
    der = signer.sign_digest(h.finalize(), digest)
    key.public_key().verify(der, b"payload", ec.ECDSA(digest))
    assert fake.calls[-1][1]["SigningAlgorithm"] == algorithm


@pytest.mark.parametrize("digest", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_rsa_digest_signatures_are_pss(digest: hashes.HashAlgorithm) -> None:
    key = rsa.generate_private_key(65537, 2048)
    signer, fake = opened(key)
    h = hashes.Hash(digest)
    h.update(b"payload")
    signature = signer.sign_digest(h.finalize(), digest)
    pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
    key.public_key().verify(signature, b"payload", pss, digest)
    assert fake.calls[-1][1]["SigningAlgorithm"] == f"RSASSA_PSS_SHA_{digest.digest_size * 8}"
    assert signer.key_spec == "RSA_2048"


def test_wrong_key_spec_for_the_format_is_refused_before_any_call() -> None:
    rsa_signer, fake = opened(rsa.generate_private_key(65537, 2048))
    with pytest.raises(KmsKeySpecError, match=r"RSA_2048: Notary v1 .* need an ECC_NIST_P256 key"):
        rsa_signer.sign(b"targets")
    p384_signer, fake384 = opened(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(KmsKeySpecError, match="ECC_NIST_P384, which signs SHA384 digests only"):
        p384_signer.sign_digest(hashlib.sha256(b"x").digest(), hashes.SHA256())  # cosign's hash
    with pytest.raises(KmsKeySpecError, match="Notary v1"):
        p384_signer.sign(b"targets")
    assert fake.count("Sign") == 0 and fake384.count("Sign") == 0


def test_unusable_key_specs_and_usage_are_refused_when_opened() -> None:
    with pytest.raises(KmsKeySpecError, match="secp256k1"):
        opened(ec.generate_private_key(ec.SECP256K1()))
    with pytest.raises(KmsKeyUsageError, match="key usage ENCRYPT_DECRYPT: signing needs .* SIGN_VERIFY"):
        opened(rsa.generate_private_key(65537, 2048), usage="ENCRYPT_DECRYPT")


def test_a_signature_by_another_key_is_caught() -> None:
    signer, _ = opened(p256(), sign_with=p256())  # the alias now points to another key
    with pytest.raises(KmsSignatureError, match="does not verify .* with its public key"):
        signer.sign(b"targets")


@pytest.mark.parametrize(
    ("code", "status", "kind", "text"),
    [
        (
            "AccessDeniedException",
            400,
            KmsAccessDeniedError,
            "AWS KMS denied kms:Sign on key awskms:///alias/release-signer",
        ),
        ("UnrecognizedClientException", 400, KmsAccessDeniedError, "rejected the credentials for kms:Sign"),
        ("DisabledException", 400, KmsKeyStateError, "is disabled"),
        ("KMSInvalidStateException", 400, KmsKeyStateError, "cancel the deletion"),
        ("NotFoundException", 400, KmsKeyStateError, "does not exist"),
        (
            "InvalidKeyUsageException",
            400,
            KmsKeyUsageError,
            "key usage must be SIGN_VERIFY, not ENCRYPT_DECRYPT",
        ),
        (
            "ValidationException",
            400,
            KmsError,
            "Sign on key awskms:///alias/release-signer failed: ValidationException",
        ),
    ],
)
def test_errors_name_the_cause_in_one_line_without_retry(
    code: str, status: int, kind: type[KmsError], text: str
) -> None:
    signer, fake = opened()
    message = (
        "arn:aws:kms:us-east-1:111122223333:key/x is pending deletion."
        if code == "KMSInvalidStateException"
        else "no"
    )
    fake.errors["Sign"] = [client_error(code, message, status)]
    with pytest.raises(kind) as e:
        signer.sign(b"targets")
    assert text in str(e.value) and "\n" not in str(e.value)
    assert fake.count("Sign") == 1  # never retried


def test_throttling_is_retried_a_bounded_number_of_times() -> None:
    waits: list[float] = []
    fake = FakeKms(p256())
    signer = KmsSigner.open(
        URI, client=fake, retry=RetryPolicy(attempts=4, base=0.1, cap=0.3, sleep=waits.append)
    )
    fake.errors["Sign"] = [client_error("ThrottlingException", "Rate exceeded")] * 2
    signer.sign(b"targets")  # third attempt succeeds
    assert fake.count("Sign") == 3 and len(waits) == 2 and all(0 <= w <= 0.3 for w in waits)
    fake.errors["Sign"] = [client_error("ThrottlingException", "Rate exceeded")] * 10
    with pytest.raises(KmsThrottledError, match="throttled kms:Sign on key .* 4 times in a row") as e:
        signer.sign(b"targets")
    assert "\n" not in str(e.value)
    assert fake.count("Sign") == 3 + 4 and len(fake.errors["Sign"]) == 6


def test_kms_side_failures_and_connection_errors_are_retried_then_reported() -> None:
    signer, fake = opened()
    fake.errors["Sign"] = [client_error("KMSInternalException", "boom", 500)] * 4
    with pytest.raises(KmsUnavailableError, match="after 4 attempts .*KMSInternalException"):
        signer.sign(b"targets")
    fake.errors["Sign"] = [EndpointConnectionError(endpoint_url="https://kms.example")] * 4
    with pytest.raises(KmsUnavailableError, match="cannot reach AWS KMS"):
        signer.sign(b"targets")
    assert fake.count("Sign") == 8


def test_kms_unreachable_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed loopback port: boto3's connection error, retried, then one line naming the endpoint."""
    from tests.lab.process import free_port

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    with pytest.raises(KmsUnavailableError) as e:
        KmsSigner.open(
            f"awskms://127.0.0.1:{port}/alias/x", retry=RetryPolicy(attempts=2, sleep=lambda _s: None)
        )
    assert f"cannot reach AWS KMS at http://127.0.0.1:{port}" in str(e.value)
    assert "kms:GetPublicKey on key awskms://127.0.0.1" in str(e.value) and "\n" not in str(e.value)


def test_no_region_and_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from notar.kms import _client

    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _client._clients.clear()
    with pytest.raises(KmsError, match="no AWS region for KMS key awskms:///alias/x: set AWS_REGION"):
        KmsSigner.open("awskms:///alias/x")
    # a key ARN names its region: then the credentials are what is missing
    arn = "awskms://127.0.0.1:9/arn:aws:kms:eu-west-1:111122223333:alias/x"
    with pytest.raises(KmsAccessDeniedError, match="no AWS credentials for kms:GetPublicKey"):
        KmsSigner.open(arn)
    _client._clients.clear()
