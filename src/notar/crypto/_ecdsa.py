"""ECDSA signature encodings: DER ``Ecdsa-Sig-Value`` (X.509, cosign, KMS) and fixed-width ``R || S``.

Key services (AWS KMS ``Sign``) and ``cryptography`` produce DER; JWS, COSE and Notary v1 carry the two
integers as fixed-width big-endian halves. Each format converts in one place, here.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from notar.crypto.errors import InvalidKeyError

__all__ = ["ecdsa_der_to_raw", "ecdsa_raw_to_der", "ecdsa_width"]


def ecdsa_width(curve: ec.EllipticCurve) -> int:
    """Bytes per half of an ``R || S`` signature on *curve* (32 for P-256, 48 for P-384, 66 for P-521)."""
    return (curve.key_size + 7) // 8


def ecdsa_der_to_raw(signature: bytes, curve: ec.EllipticCurve) -> bytes:
    """DER ``SEQUENCE {r, s}`` -> ``R || S``, each half left-padded to the curve's width.

    Raises :class:`InvalidKeyError` (one line) when *signature* is not DER or an integer does not fit.
    """
    try:
        r, s = decode_dss_signature(signature)
    except ValueError as e:
        raise InvalidKeyError(f"ECDSA signature is not DER-encoded ({e})") from None
    width = ecdsa_width(curve)
    if r <= 0 or s <= 0 or r.bit_length() > 8 * width or s.bit_length() > 8 * width:
        raise InvalidKeyError(f"ECDSA signature integers do not fit {curve.name}")
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def ecdsa_raw_to_der(signature: bytes) -> bytes:
    """``R || S`` (two halves of equal length) -> DER ``SEQUENCE {r, s}``."""
    if not signature or len(signature) % 2:
        raise InvalidKeyError(f"R || S signature has odd or zero length {len(signature)}")
    half = len(signature) // 2
    return encode_dss_signature(
        int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    )
