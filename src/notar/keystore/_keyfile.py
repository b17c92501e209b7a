"""Private and public key files exactly as notary 0.7 and the docker CLI read and write them.

Writing (``tuf/utils/x509.go`` ``ConvertPrivateKeyToPKCS8``):

* with a passphrase: PEM ``ENCRYPTED PRIVATE KEY``, PKCS#8 PBES2 / PBKDF2-HMAC-SHA1 / AES-256-CBC;
* without one (``None`` or empty): PEM ``PRIVATE KEY`` holding the same plaintext;
* headers ``gun:`` (only when given) and ``role:``, sorted, then a blank line (Go ``pem.Encode``).

Reading accepts, besides notary's own files, standard PKCS#8 (also RFC 8410 Ed25519), PBES2 with an
explicit HMAC-SHA1/SHA256 PRF and AES-128-CBC, and the legacy ``EC PRIVATE KEY`` / ``RSA PRIVATE KEY`` /
``ED25519 PRIVATE KEY`` blocks, plain or with OpenSSL ``Proc-Type``/``DEK-Info`` encryption.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notar.crypto import InvalidKeyError, PrivateKey, PublicKey, UnsupportedKeyError, encode_pem, pem_blocks
from notar.keystore import _pkcs8
from notar.keystore.errors import KeyFileError, PassphraseUnavailableError, WrongPassphraseError

__all__ = [
    "MAX_KEY_FILE_BYTES",
    "DecodedKey",
    "PassphraseInput",
    "decode_private_key",
    "encode_private_key",
    "encode_public_key",
    "read_key_headers",
    "valid_header_value",
]

PassphraseInput = str | Callable[[], str] | None
"""A passphrase, a function asked for one only if the file turns out to be encrypted, or ``None``."""

MAX_KEY_FILE_BYTES: Final = 1 << 20  # docker reads at most 1 MiB from a key file

PEM_ENCRYPTED: Final = "ENCRYPTED PRIVATE KEY"
PEM_PLAIN: Final = "PRIVATE KEY"
PEM_PUBLIC: Final = "PUBLIC KEY"
_LEGACY: Final = {"EC PRIVATE KEY": "ecdsa", "RSA PRIVATE KEY": "rsa", "ED25519 PRIVATE KEY": "ed25519"}
PRIVATE_KEY_PEM_TYPES: Final = frozenset({PEM_ENCRYPTED, PEM_PLAIN, *_LEGACY})

_HEADER_VALUE = re.compile(r"[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?\Z")


@dataclass(frozen=True, slots=True)
class DecodedKey:
    """A private key read from a key file, with the file's PEM headers."""

    key: PrivateKey
    role: str | None
    gun: str | None
    headers: dict[str, str] = field(default_factory=dict)
    encrypted: bool = False


# --------------------------------------------------------------------------- writing


def encode_private_key(
    key: PrivateKey, passphrase: str | None, *, role: str, gun: str | None = None
) -> bytes:
    """The key file notary writes: ``ENCRYPTED PRIVATE KEY``, or ``PRIVATE KEY`` without a passphrase.

    *role* goes into the ``role:`` header and *gun*, when given, into ``gun:``. Deciding whether a role
    carries a GUN is the key store's job (:class:`~notar.keystore.FileKeyStore` drops it for root and
    delegation keys, as notary does).
    """
    return _encode_private_key(
        key,
        passphrase,
        role=role,
        gun=gun,
        salt=os.urandom(_pkcs8.NOTARY_SALT_BYTES),
        iv=os.urandom(_pkcs8.AES_BLOCK),
    )


def _encode_private_key(
    key: PrivateKey, passphrase: str | None, *, role: str, gun: str | None, salt: bytes, iv: bytes
) -> bytes:
    headers = {"role": _header_value("role", role)}
    if gun is not None:
        headers["gun"] = _header_value("gun", gun)
    plaintext = _pkcs8.notary_private_key_info(key)
    try:
        if passphrase:
            der = _pkcs8.encrypt_pbes2(plaintext, _utf8(passphrase), salt=salt, iv=iv)
            return encode_pem(PEM_ENCRYPTED, der, headers)
        return encode_pem(PEM_PLAIN, bytes(plaintext), headers)
    finally:
        _pkcs8.wipe(plaintext)


def encode_public_key(pub: PublicKey, *, role: str) -> bytes:
    """``PUBLIC KEY`` PEM (DER SubjectPublicKeyInfo) with a ``role:`` header, like ``NAME.pub`` from docker.

    Certificate keys are written as their bare public key; Ed25519 keys as a standard RFC 8410 SPKI.
    """
    bare = pub.bare()
    if bare.keytype in ("ecdsa", "rsa"):
        spki = bare.public
    else:
        try:
            crypto = bare.to_crypto()
        except (InvalidKeyError, UnsupportedKeyError) as e:
            raise KeyFileError(f"cannot write a public key file for this key: {e}") from e
        spki = crypto.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return encode_pem(PEM_PUBLIC, spki, {"role": _header_value("role", role)})


def valid_header_value(value: object) -> bool:
    """True if *value* can be a ``role:``/``gun:`` header: one line, no control characters or edge spaces."""
    return isinstance(value, str) and _HEADER_VALUE.match(value) is not None


def _header_value(name: str, value: str) -> str:
    if not valid_header_value(value):
        raise ValueError(
            f"invalid {name} for a key file header: it must be non-empty, on one line, "
            "without control characters or surrounding spaces"
        )
    return value


# --------------------------------------------------------------------------- reading


def _first_block(data: bytes) -> tuple[str, dict[str, str], bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("key file data must be bytes")
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError("key file is too large (more than 1 MiB)")
    try:
        blocks = pem_blocks(bytes(data))
    except InvalidKeyError as e:
        raise KeyFileError(f"key file is not valid PEM: {e}") from e
    if not blocks:
        raise KeyFileError("no complete PEM block found: not a private key file, or truncated")
    kind, headers, der = blocks[0]
    if kind not in PRIVATE_KEY_PEM_TYPES:
        raise KeyFileError(f"unsupported key file type {kind!r} (expected a private key PEM)")
    if not der:
        raise KeyFileError(f"the {kind} PEM block is empty")
    return kind, headers, der


def read_key_headers(data: bytes) -> dict[str, str]:
    """The PEM headers of a private key file (``role``, ``gun``, ...) without decrypting anything."""
    return _first_block(data)[1]


def decode_private_key(data: bytes, passphrase: PassphraseInput) -> DecodedKey:
    """Read a private key file; *passphrase* is only used (or called) when the file is encrypted.

    Raises :class:`WrongPassphraseError` when the passphrase does not decrypt the key,
    :class:`PassphraseUnavailableError` when the file is encrypted and no passphrase is given,
    and :class:`KeyFileError` for a malformed, truncated or unsupported file.
    """
    kind, headers, der = _first_block(data)
    encrypted = kind == PEM_ENCRYPTED or (kind in _LEGACY and "Proc-Type" in headers)
    if kind == PEM_ENCRYPTED:
        crypto = _decode_pbes2(der, _passphrase_bytes(passphrase))
    elif kind == PEM_PLAIN:
        crypto = _pkcs8.key_from_private_key_info(_pkcs8.parse_private_key_info(der))
    else:
        crypto = _decode_legacy(kind, headers, der, passphrase)
    try:
        key = PrivateKey(crypto)
    except UnsupportedKeyError as e:
        raise KeyFileError(f"unsupported key: {e}") from e
    return DecodedKey(
        key=key,
        role=headers.get("role") or None,
        gun=headers.get("gun") or None,
        headers=dict(headers),
        encrypted=encrypted,
    )


def _passphrase_bytes(passphrase: PassphraseInput) -> bytes:
    if callable(passphrase):
        passphrase = passphrase()
    if passphrase is None:
        raise PassphraseUnavailableError("the key file is encrypted and no passphrase was given")
    return _utf8(passphrase)


def _utf8(passphrase: str) -> bytes:
    # surrogateescape: a passphrase from os.environ that is not valid UTF-8 gets its original bytes
    # back, which is what Go's []byte(string) uses.
    return passphrase.encode("utf-8", "surrogateescape")


def _decode_pbes2(der: bytes, passphrase: bytes) -> _pkcs8.CryptoPrivateKey:
    plaintext = _pkcs8.decrypt_pbes2(der, passphrase)
    try:
        try:
            info = _pkcs8.parse_private_key_info(plaintext)
        except _pkcs8.MalformedPlaintext as e:
            # The padding happened to look right, but the plaintext is garbage: wrong passphrase.
            raise WrongPassphraseError("wrong passphrase") from e
        return _pkcs8.key_from_private_key_info(info)
    finally:
        _pkcs8.wipe(plaintext)


def _decode_legacy(
    kind: str, headers: dict[str, str], der: bytes, passphrase: PassphraseInput
) -> _pkcs8.CryptoPrivateKey:
    plaintext: bytearray | None = None
    if "Proc-Type" in headers:
        if headers.get("Proc-Type", "").replace(" ", "") != "4,ENCRYPTED":
            raise KeyFileError(f"unsupported Proc-Type header in {kind} file")
        dek_info = headers.get("DEK-Info")
        if not dek_info:
            raise KeyFileError(f"encrypted {kind} file has no DEK-Info header")
        plaintext = _pkcs8.decrypt_rfc1423(der, dek_info, _passphrase_bytes(passphrase))
    try:
        return _legacy_key(kind, plaintext if plaintext is not None else der)
    except KeyFileError as e:
        if plaintext is not None:  # RFC 1423 only checks the padding: garbage means a wrong passphrase
            raise WrongPassphraseError("wrong passphrase") from e
        raise
    finally:
        _pkcs8.wipe(plaintext)


def _legacy_key(kind: str, body: bytes | bytearray) -> _pkcs8.CryptoPrivateKey:
    keytype = _LEGACY[kind]
    if keytype == "ed25519":
        return _pkcs8.ed25519_from_notary_bytes(body)
    try:
        loaded = serialization.load_der_private_key(body, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"invalid {kind} data") from e
    want = ec.EllipticCurvePrivateKey if keytype == "ecdsa" else rsa.RSAPrivateKey
    if not isinstance(loaded, want):
        raise KeyFileError(f"{kind} block holds a {type(loaded).__name__}")
    return loaded
