"""The key-access seam the OCI formats sign through: ``DigestSigner.sign_digest`` and DER <-> R||S."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from notar.crypto import (
    DigestSigner,
    InvalidKeyError,
    PrivateKey,
    Signer,
    UnsupportedKeyError,
    ecdsa_der_to_raw,
    ecdsa_raw_to_der,
    ecdsa_width,
)
from tests.notation.factory import key

HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


@pytest.mark.parametrize(
    ("kind", "hash_name"), [("ec256", "sha256"), ("ec384", "sha384"), ("ec521", "sha512")]
)
def test_ecdsa_sign_digest_is_der_over_the_hash(kind: str, hash_name: str) -> None:
    private = PrivateKey(key(kind))  # type: ignore[arg-type]
    assert isinstance(private, DigestSigner) and isinstance(private, Signer)
    message = b"the signed bytes"
    algorithm = HASHES[hash_name]
    der = private.sign_digest(hashlib.new(hash_name, message).digest(), algorithm)
    assert der[0] == 0x30  # a DER SEQUENCE, as KMS returns it
    public = key(kind).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, message, ec.ECDSA(algorithm))  # verifies over the message: the hash was the right one
    raw = ecdsa_der_to_raw(der, public.curve)
    assert len(raw) == 2 * ecdsa_width(public.curve)
    assert ecdsa_raw_to_der(raw) == der


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_rsa_sign_digest_is_pss_with_salt_of_the_hash_length(hash_name: str) -> None:
    private = PrivateKey(key("rsa2048"))  # type: ignore[arg-type]
    algorithm = HASHES[hash_name]
    message = b"payload"
    signature = private.sign_digest(hashlib.new(hash_name, message).digest(), algorithm)
    public = key("rsa2048").public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
    public.verify(signature, message, pss, algorithm)
    with pytest.raises(InvalidSignature):  # the salt length is the hash length, not anything else
        public.verify(signature, message, padding.PSS(mgf=padding.MGF1(algorithm), salt_length=0), algorithm)


def test_sign_digest_refuses_wrong_lengths_and_ed25519() -> None:
    with pytest.raises(InvalidKeyError, match="32 bytes, got 31"):
        PrivateKey(key("ec256")).sign_digest(b"x" * 31, hashes.SHA256())  # type: ignore[arg-type]
    with pytest.raises(UnsupportedKeyError, match="ed25519"):
        PrivateKey.generate("ed25519").sign_digest(b"x" * 32, hashes.SHA256())


def test_der_to_raw_refuses_garbage_and_oversized_integers() -> None:
    with pytest.raises(InvalidKeyError, match="not DER"):
        ecdsa_der_to_raw(b"\x01\x02", ec.SECP256R1())
    with pytest.raises(InvalidKeyError, match="do not fit"):
        ecdsa_der_to_raw(encode_dss_signature(1 << 260, 1), ec.SECP256R1())
    with pytest.raises(InvalidKeyError, match="odd or zero"):
        ecdsa_raw_to_der(b"\x01\x02\x03")


@given(
    r=st.integers(min_value=1, max_value=(1 << 521) - 1),
    s=st.integers(min_value=1, max_value=(1 << 521) - 1),
)
def test_der_raw_round_trip(r: int, s: int) -> None:
    der = encode_dss_signature(r, s)
    raw = ecdsa_der_to_raw(der, ec.SECP521R1())
    assert len(raw) == 132 and raw[:66] == r.to_bytes(66, "big")
    assert ecdsa_raw_to_der(raw) == der
