"""KmsSigner against the lab KMS (moto server, AWS-faithful Sign): every key spec notar signs with, checked
independently with cryptography over the right message; moto's own double hash caught; AWS error answers
(disabled, pending deletion, wrong usage, symmetric, unknown alias, throttling, IAM denial) in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from notar.crypto import METHOD_ECDSA, ecdsa_raw_to_der
from notar.kms import (
    KmsAccessDeniedError,
    KmsKeySpecError,
    KmsKeyStateError,
    KmsKeyUsageError,
    KmsSignatureError,
    KmsSigner,
    KmsThrottledError,
    RetryPolicy,
    _client,
)
from tests.lab.kms import KmsLab, run_kms

pytestmark = pytest.mark.peers

MESSAGE = b'{"signed":{"_type":"Targets"}}' * 500  # 15 kB: more than RAW's 4,096 bytes
NO_WAIT = RetryPolicy(attempts=3, sleep=lambda _s: None)


def test_v1_signature_verifies_over_the_message(kms: KmsLab) -> None:
    key = kms.create_key("ECC_NIST_P256", alias=kms.unique_alias())
    signer = KmsSigner.open(key.uri)
    method, raw = signer.sign(MESSAGE)
    assert method == METHOD_ECDSA and len(raw) == 64
    # independent: cryptography, the public key KMS published, ECDSA/SHA-256 over the MESSAGE
    public = kms.client().get_public_key(KeyId=key.key_id)["PublicKey"]
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    loaded = load_der_public_key(public)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    loaded.verify(ecdsa_raw_to_der(raw), MESSAGE, ec.ECDSA(hashes.SHA256()))
    # and by KMS itself (Verify, RAW: the lab's Verify is moto's, which hashes RAW messages correctly)
    ok = kms.client().verify(
        KeyId=key.key_id,
        Message=MESSAGE[:4096],
        Signature=signer.sign_digest(_sha256(MESSAGE[:4096]), hashes.SHA256()),
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert ok["SignatureValid"]
    log = kms.call_log("Sign")
    assert [e["message_type"] for e in log] == ["DIGEST", "DIGEST"] and {e["length"] for e in log} == {32}


def _sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


@pytest.mark.parametrize(
    ("spec", "digest"),
    [
        ("ECC_NIST_P384", hashes.SHA384()),
        ("ECC_NIST_P521", hashes.SHA512()),
        ("RSA_2048", hashes.SHA256()),
        ("RSA_3072", hashes.SHA384()),
        ("RSA_4096", hashes.SHA512()),
    ],
)
def test_notation_key_specs(kms: KmsLab, spec: str, digest: hashes.HashAlgorithm) -> None:
    key = kms.create_key(spec, alias=kms.unique_alias())
    signer = KmsSigner.open(key.uri)
    assert signer.key_spec == spec
    h = hashes.Hash(digest)
    h.update(MESSAGE)
    signature = signer.sign_digest(h.finalize(), digest)
    public = signer.public_key.to_crypto()
    if isinstance(public, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)  # what Notation verifies
        public.verify(signature, MESSAGE, pss, digest)
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, MESSAGE, ec.ECDSA(digest))
    with pytest.raises(KmsKeySpecError, match="ECC_NIST_P256"):
        signer.sign(MESSAGE)  # never Notary v1


def test_key_reference_forms(kms: KmsLab) -> None:
    """Key ID, key ARN, alias, alias ARN, and an endpoint in the URI itself: the same key."""
    alias = kms.unique_alias()
    key = kms.create_key(alias=alias)
    alias_arn = key.arn.split(":key/")[0] + f":{alias}"
    ids = set()
    for form in (key.key_id, key.arn, alias, alias_arn):
        ids.add(KmsSigner.open(f"awskms:///{form}").key_id)
        ids.add(KmsSigner.open(f"awskms://{kms.endpoint}/{form}").key_id)
    assert len(ids) == 1


def test_stock_moto_double_hash_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.5 signs SHA-256(digest) for MessageType=DIGEST: notar refuses the signature (a test only
    against stock moto would either fail with correct code or pass with code that hashes twice)."""
    with run_kms(tmp_path / "stock", stock=True) as stock:
        for name, value in stock.env().items():
            monkeypatch.setenv(name, value)
        _client._clients.clear()
        key = stock.create_key(alias="alias/stock")
        signer = KmsSigner.open(key.uri)
        with pytest.raises(KmsSignatureError, match="hashed the digest again"):
            signer.sign(MESSAGE)
        # what stock moto signed really is SHA-256 over the digest: proof that the test above is meaningful
        der = stock.client().sign(
            KeyId=key.key_id, Message=_sha256(MESSAGE), MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
        )["Signature"]
        public = signer.public_key.to_crypto()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(der, _sha256(MESSAGE), ec.ECDSA(hashes.SHA256()))
    _client._clients.clear()


def test_disabled_and_pending_deletion_keys(kms: KmsLab) -> None:
    key = kms.create_key(alias=kms.unique_alias())
    signer = KmsSigner.open(key.uri)
    kms.client().disable_key(KeyId=key.key_id)
    with pytest.raises(KmsKeyStateError, match=f"KMS key {key.uri} is disabled .*enable-key"):
        signer.sign(MESSAGE)
    kms.client().schedule_key_deletion(KeyId=key.key_id, PendingWindowInDays=7)
    with pytest.raises(KmsKeyStateError, match="pending deletion.*cancel-key-deletion") as e:
        KmsSigner.open(key.uri)
    assert "\n" not in str(e.value)


def test_keys_that_cannot_sign(kms: KmsLab) -> None:
    encrypting = kms.create_key("RSA_2048", usage="ENCRYPT_DECRYPT", alias=kms.unique_alias())
    with pytest.raises(KmsKeyUsageError, match="key usage ENCRYPT_DECRYPT"):
        KmsSigner.open(encrypting.uri)
    symmetric = kms.create_key("SYMMETRIC_DEFAULT", usage="ENCRYPT_DECRYPT", alias=kms.unique_alias())
    with pytest.raises(KmsKeyUsageError, match="UnsupportedOperationException"):
        KmsSigner.open(symmetric.uri)
    with pytest.raises(KmsKeyStateError, match="does not exist"):
        KmsSigner.open("awskms:///alias/nobody-has-this-alias")


def test_throttling_is_retried_then_reported(kms: KmsLab) -> None:
    key = kms.create_key(alias=kms.unique_alias())
    signer = KmsSigner.open(key.uri, retry=NO_WAIT)
    kms.reset()
    kms.inject("Sign", "ThrottlingException", "ThrottlingException")
    signer.sign(MESSAGE)
    assert kms.calls("Sign") == 3
    kms.inject("Sign", *["ThrottlingException"] * 5)
    with pytest.raises(KmsThrottledError, match="3 times in a row"):
        signer.sign(MESSAGE)
    assert kms.calls("Sign") == 6


@pytest.fixture(scope="module")
def iam_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KmsLab, tuple[str, str]]]:
    """A lab KMS that enforces IAM: the first 4 calls make an admin, every later call is checked."""
    with run_kms(tmp_path_factory.mktemp("kms-iam"), INITIAL_NO_AUTH_ACTION_COUNT="4") as lab:
        iam = lab.client(service="iam")
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        yield lab, (key["AccessKeyId"], key["SecretAccessKey"])


def _user(lab: KmsLab, admin: tuple[str, str], name: str, actions: list[str]) -> tuple[str, str]:
    iam = lab.client(*admin, service="iam")
    iam.create_user(UserName=name)
    # moto checks KMS actions against Resource "*" only (it cannot scope them to a key ARN)
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_iam_sign_and_get_public_key_are_enough_and_denial_names_the_action(
    iam_kms: tuple[KmsLab, tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab, admin = iam_kms
    key = lab.create_key(alias=lab.unique_alias(), key_id=admin[0], secret=admin[1])
    enough = _user(lab, admin, "signer", ["kms:Sign", "kms:GetPublicKey"])
    reader = _user(lab, admin, "reader", ["kms:GetPublicKey"])
    for name, value in lab.env(key_id=enough[0], secret=enough[1]).items():
        monkeypatch.setenv(name, value)
    _client._clients.clear()
    KmsSigner.open(key.uri).sign(MESSAGE)  # the README policy's two actions suffice
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader[1])
    _client._clients.clear()
    signer = KmsSigner.open(key.uri)
    with pytest.raises(KmsAccessDeniedError) as e:
        signer.sign(MESSAGE)
    assert f"AWS KMS denied kms:Sign on key {key.uri}" in str(e.value)
    assert "is not authorized to perform: kms:Sign" in str(e.value) and "\n" not in str(e.value)
    _client._clients.clear()
