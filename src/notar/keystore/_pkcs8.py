"""PKCS#8 as notary writes it (``tuf/utils/pkcs8.go``), PBES2 encryption and legacy RFC 1423 decryption.

Notary's plaintext ``PrivateKeyInfo`` is not quite standard:

* ECDSA: ``version = 1``, ``{id-ecPublicKey, namedCurve}``, privateKey = SEC1 ``ECPrivateKey`` with the
  curve parameters and the public key (what ``x509.MarshalECPrivateKey`` writes);
* RSA: ``version = 0``, ``{rsaEncryption}`` *without* the NULL parameter, privateKey = PKCS#1;
* Ed25519: OID 1.3.6.1.4.1.11591.15.1, privateKey = 96 raw bytes: public (32) || seed (32) || public (32),
  i.e. the public key followed by Go's 64-byte ``ed25519.PrivateKey``.

Encryption is PBES2 with PBKDF2-HMAC-SHA1 (no ``prf`` and no ``keyLength`` field: Go's reader ignores
the PRF and always uses SHA-1), an 8-byte salt, 2048 iterations and AES-256-CBC with PKCS#7 padding.

Decrypted plaintext is kept in ``bytearray`` buffers that callers overwrite with :func:`wipe` when done.
That is best effort: the ``cryptography`` and ``asn1crypto`` objects made from it are immutable copies.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, ClassVar, Final, cast

from asn1crypto import core
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from notar.crypto import PrivateKey
from notar.keystore.errors import KeyFileError, WrongPassphraseError

__all__ = [
    "NOTARY_ITERATIONS",
    "CryptoPrivateKey",
    "MalformedPlaintext",
    "decrypt_pbes2",
    "decrypt_rfc1423",
    "ed25519_from_notary_bytes",
    "encrypt_pbes2",
    "key_from_private_key_info",
    "notary_private_key_info",
    "parse_private_key_info",
    "wipe",
]

CryptoPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

NOTARY_ITERATIONS: Final = 2048
NOTARY_SALT_BYTES: Final = 8
AES_BLOCK: Final = 16
_MAX_ITERATIONS: Final = 10_000_000  # a hostile file must not make us spin for minutes
_MAX_SALT_BYTES: Final = 1024

OID_EC_PUBLIC_KEY: Final = "1.2.840.10045.2.1"
OID_RSA_ENCRYPTION: Final = "1.2.840.113549.1.1.1"
OID_NOTARY_ED25519: Final = "1.3.6.1.4.1.11591.15.1"
OID_ED25519: Final = "1.3.101.112"
OID_PBES2: Final = "1.2.840.113549.1.5.13"
OID_PBKDF2: Final = "1.2.840.113549.1.5.12"
OID_HMAC_SHA1: Final = "1.2.840.113549.2.7"
OID_HMAC_SHA256: Final = "1.2.840.113549.2.9"
OID_AES128_CBC: Final = "2.16.840.1.101.3.4.1.2"
OID_AES256_CBC: Final = "2.16.840.1.101.3.4.1.42"

_CURVE_OIDS: Final = {
    "secp256r1": "1.2.840.10045.3.1.7",
    "secp384r1": "1.3.132.0.34",
    "secp521r1": "1.3.132.0.35",
}
_AES_KEY_BYTES: Final = {OID_AES256_CBC: 32, OID_AES128_CBC: 16}
_CIPHER_NAMES: Final = {OID_AES256_CBC: "AES-256-CBC", OID_AES128_CBC: "AES-128-CBC"}
_PRFS: Final = {OID_HMAC_SHA1: "sha1", OID_HMAC_SHA256: "sha256"}
_DER_NULL: Final = b"\x05\x00"

# Whatever asn1crypto raises on hostile input: it is lazy, so errors surface on field access.
_ASN1_ERRORS: Final = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


class MalformedPlaintext(KeyFileError):
    """The bytes are not a DER ``PrivateKeyInfo`` at all (after decryption: the passphrase was wrong)."""


# --------------------------------------------------------------------------- ASN.1 specs


class _AlgorithmIdentifier(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class _Attributes(core.SetOf):  # type: ignore[misc]
    _child_spec = core.Any


class _PrivateKeyInfo(core.Sequence):  # type: ignore[misc]
    """RFC 5958 ``OneAsymmetricKey`` (a PKCS#8 ``PrivateKeyInfo`` when the optional fields are absent)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("version", core.Integer),
        ("algorithm", _AlgorithmIdentifier),
        ("private_key", core.OctetString),
        ("attributes", _Attributes, {"implicit": 0, "optional": True}),
        ("public_key", core.OctetBitString, {"implicit": 1, "optional": True}),
    ]


class _Pbkdf2Params(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("salt", core.OctetString),
        ("iteration_count", core.Integer),
        ("key_length", core.Integer, {"optional": True}),
        ("prf", _AlgorithmIdentifier, {"optional": True}),
    ]


class _Pbes2Params(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("key_derivation_func", _AlgorithmIdentifier),
        ("encryption_scheme", _AlgorithmIdentifier),
    ]


class _EncryptedPrivateKeyInfo(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("encryption_algorithm", _AlgorithmIdentifier),
        ("encrypted_data", core.OctetString),
    ]


def wipe(buf: bytearray | None) -> None:
    """Overwrite a secret buffer with zeros (in place)."""
    if buf is not None:
        buf[:] = bytes(len(buf))


# --------------------------------------------------------------------------- PrivateKeyInfo


def notary_private_key_info(key: PrivateKey) -> bytearray:
    """The plaintext ``PrivateKeyInfo`` DER exactly as notary 0.7 writes it for *key*."""
    raw = key.crypto
    if isinstance(raw, ec.EllipticCurvePrivateKey):
        curve = _CURVE_OIDS.get(raw.curve.name)
        if curve is None:  # PrivateKey only admits the three curves above
            raise KeyFileError(f"cannot write keys on curve {raw.curve.name}")
        version = 1
        algorithm = {"algorithm": OID_EC_PUBLIC_KEY, "parameters": core.ObjectIdentifier(curve)}
        inner = raw.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,  # SEC1 with parameters and public key
            serialization.NoEncryption(),
        )
    elif isinstance(raw, rsa.RSAPrivateKey):
        version = 0
        algorithm = {"algorithm": OID_RSA_ENCRYPTION}  # no NULL parameter, like notary
        inner = raw.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1
            serialization.NoEncryption(),
        )
    else:
        version = 0
        algorithm = {"algorithm": OID_NOTARY_ED25519}
        seed = raw.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = key.public_key.public
        inner = public + seed + public
    info = _PrivateKeyInfo({"version": version, "algorithm": algorithm, "private_key": inner})
    return bytearray(info.dump())


def parse_private_key_info(der: bytes | bytearray) -> _PrivateKeyInfo:
    """Parse the DER structure (every field), raising :class:`MalformedPlaintext` if it is not one."""
    try:
        info = _PrivateKeyInfo.load(bytes(der), strict=True)
        version = info["version"].native
        oid = info["algorithm"]["algorithm"].dotted
        _ = info["algorithm"]["parameters"].native
        _ = info["private_key"].native
        _ = info["attributes"].native
        _ = info["public_key"].native
    except _ASN1_ERRORS as e:
        raise MalformedPlaintext("the key is not a valid PKCS#8 PrivateKeyInfo structure") from e
    if not isinstance(version, int) or not isinstance(oid, str):
        raise MalformedPlaintext("the key is not a valid PKCS#8 PrivateKeyInfo structure")
    return cast(_PrivateKeyInfo, info)


def key_from_private_key_info(info: _PrivateKeyInfo) -> CryptoPrivateKey:
    """The ``cryptography`` key of a parsed ``PrivateKeyInfo`` (notary's quirks and standard PKCS#8)."""
    version = info["version"].native
    if version not in (0, 1):
        raise KeyFileError(f"unsupported PKCS#8 version {version}")
    oid = info["algorithm"]["algorithm"].dotted
    params = info["algorithm"]["parameters"]
    has_params = not isinstance(params, core.Void)
    body: bytes = info["private_key"].native
    try:
        if oid == OID_EC_PUBLIC_KEY:
            # cryptography rejects notary's version 1, so hand it a version 0 copy of the same structure.
            standard = _PrivateKeyInfo(
                {"version": 0, "algorithm": info["algorithm"].copy(), "private_key": body}
            ).dump()
            loaded = serialization.load_der_private_key(standard, None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):  # pragma: no cover - OID says EC
                raise KeyFileError(f"ecdsa key data holds a {type(loaded).__name__}")
            return loaded
        if oid == OID_RSA_ENCRYPTION:
            if has_params and params.dump() != _DER_NULL:
                raise KeyFileError("RSA key has unexpected algorithm parameters")
            loaded = serialization.load_der_private_key(body, None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise KeyFileError(f"rsa key data holds a {type(loaded).__name__}")
            return loaded
        if oid == OID_NOTARY_ED25519:
            return ed25519_from_notary_bytes(body)
        if oid == OID_ED25519:
            if has_params:
                raise KeyFileError("Ed25519 key has unexpected algorithm parameters")
            seed = core.OctetString.load(body, strict=True).native
            if len(seed) != 32:
                raise KeyFileError("Ed25519 private key must be 32 bytes")
            key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            public = info["public_key"].native
            if public is not None and _raw_public(key) != public:
                raise KeyFileError("Ed25519 key file holds a public key that does not match its private key")
            return key
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"invalid private key data ({_algorithm_name(oid)})") from e
    raise KeyFileError(f"unsupported private key algorithm {_algorithm_name(oid)}")


def ed25519_from_notary_bytes(body: bytes | bytearray) -> ed25519.Ed25519PrivateKey:
    """Notary's 96-byte Ed25519 private key: public || seed || public (all three checked)."""
    if len(body) != 96:
        raise KeyFileError("malformed ed25519 private key: expected 96 bytes (public || seed || public)")
    view = memoryview(body)  # slices of a view copy nothing that we could not wipe
    key = ed25519.Ed25519PrivateKey.from_private_bytes(view[32:64])
    public = _raw_public(key)
    if not (hmac.compare_digest(view[:32], public) and hmac.compare_digest(view[64:], public)):
        raise KeyFileError("malformed ed25519 private key: the public key does not match the seed")
    return key


def _raw_public(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _algorithm_name(oid: str) -> str:
    names = {
        OID_EC_PUBLIC_KEY: "ecdsa",
        OID_RSA_ENCRYPTION: "rsa",
        OID_NOTARY_ED25519: "ed25519",
        OID_ED25519: "ed25519",
        "1.3.101.113": "ed448",
        "1.3.101.110": "x25519",
        "1.3.101.111": "x448",
        "1.2.840.10040.4.1": "dsa",
        "1.2.840.113549.1.1.10": "rsassa-pss",
    }
    return f"{names[oid]} ({oid})" if oid in names else f"OID {oid}"


# --------------------------------------------------------------------------- PBES2


def _pbkdf2(passphrase: bytes, salt: bytes, iterations: int, length: int, prf: str) -> bytes:
    algorithm: hashes.HashAlgorithm = hashes.SHA1() if prf == "sha1" else hashes.SHA256()  # noqa: S303
    return PBKDF2HMAC(algorithm, length, salt, iterations).derive(passphrase)


def encrypt_pbes2(
    plaintext: bytes | bytearray,
    passphrase: bytes,
    *,
    salt: bytes,
    iv: bytes,
    iterations: int = NOTARY_ITERATIONS,
) -> bytes:
    """``EncryptedPrivateKeyInfo`` DER: PBES2, PBKDF2-HMAC-SHA1 without prf/keyLength, AES-256-CBC."""
    if len(iv) != AES_BLOCK:
        raise ValueError("the AES-CBC IV must be 16 bytes")
    key = _pbkdf2(passphrase, salt, iterations, 32, "sha1")
    pad = AES_BLOCK - len(plaintext) % AES_BLOCK  # always 1..16: a full block when already aligned
    padded = bytearray(plaintext)
    padded.extend(bytes([pad]) * pad)
    out = bytearray(len(padded) + AES_BLOCK - 1)
    try:
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        n = encryptor.update_into(padded, out)
        tail = encryptor.finalize()
        ciphertext = bytes(out[:n]) + tail
    finally:
        wipe(padded)
    params = _Pbes2Params(
        {
            "key_derivation_func": {
                "algorithm": OID_PBKDF2,
                "parameters": _Pbkdf2Params({"salt": salt, "iteration_count": iterations}),
            },
            "encryption_scheme": {"algorithm": OID_AES256_CBC, "parameters": core.OctetString(iv)},
        }
    )
    info = _EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {"algorithm": OID_PBES2, "parameters": params},
            "encrypted_data": ciphertext,
        }
    )
    return bytes(info.dump())


def decrypt_pbes2(der: bytes, passphrase: bytes) -> bytearray:
    """Decrypt an ``EncryptedPrivateKeyInfo``; returns the padded-off plaintext (wipe it after use).

    Raises :class:`KeyFileError` for anything but PBES2 / PBKDF2 (HMAC-SHA1 or -SHA256) / AES-128- or
    AES-256-CBC, and :class:`WrongPassphraseError` when the padding is wrong.
    """
    try:
        outer = _EncryptedPrivateKeyInfo.load(der, strict=True)
        scheme = outer["encryption_algorithm"]["algorithm"].dotted
        scheme_params = outer["encryption_algorithm"]["parameters"]
        ciphertext: bytes = outer["encrypted_data"].native
    except _ASN1_ERRORS as e:
        raise KeyFileError("encrypted key is not a valid PKCS#8 EncryptedPrivateKeyInfo structure") from e
    if scheme != OID_PBES2:
        raise KeyFileError(
            f"unsupported key encryption scheme {scheme} (only PBES2 with PBKDF2 and AES-CBC is supported)"
        )
    try:
        pbes2 = _Pbes2Params.load(scheme_params.dump(), strict=True)
        kdf_oid = pbes2["key_derivation_func"]["algorithm"].dotted
        cipher_oid = pbes2["encryption_scheme"]["algorithm"].dotted
        cipher_params = pbes2["encryption_scheme"]["parameters"]
    except _ASN1_ERRORS as e:
        raise KeyFileError("encrypted key has malformed PBES2 parameters") from e
    if kdf_oid != OID_PBKDF2:
        raise KeyFileError(f"unsupported key derivation function {kdf_oid} (only PBKDF2 is supported)")
    key_bytes = _AES_KEY_BYTES.get(cipher_oid)
    if key_bytes is None:
        raise KeyFileError(f"unsupported key cipher {cipher_oid} (only AES-256-CBC and AES-128-CBC)")
    try:
        kdf = _Pbkdf2Params.load(pbes2["key_derivation_func"]["parameters"].dump(), strict=True)
        salt: bytes = kdf["salt"].native
        iterations = kdf["iteration_count"].native
        key_length = kdf["key_length"].native
        prf = kdf["prf"]
        prf_absent = isinstance(prf, core.Void)
        prf_oid = OID_HMAC_SHA1 if prf_absent else prf["algorithm"].dotted
        prf_params = None if prf_absent else prf["parameters"]
        iv: bytes = core.OctetString.load(cipher_params.dump(), strict=True).native
    except _ASN1_ERRORS as e:
        raise KeyFileError("encrypted key has malformed PBKDF2 or cipher parameters") from e
    if prf_oid not in _PRFS:
        raise KeyFileError(f"unsupported PBKDF2 PRF {prf_oid} (only HMAC-SHA1 and HMAC-SHA256)")
    if prf_params is not None and not isinstance(prf_params, core.Void) and prf_params.dump() != _DER_NULL:
        raise KeyFileError("PBKDF2 PRF has unexpected parameters")
    if not isinstance(iterations, int) or not 1 <= iterations <= _MAX_ITERATIONS:
        raise KeyFileError(f"unreasonable PBKDF2 iteration count {iterations}")
    if not 1 <= len(salt) <= _MAX_SALT_BYTES:
        raise KeyFileError("PBKDF2 salt has an unreasonable length")
    if key_length is not None and key_length != key_bytes:
        raise KeyFileError(f"PBKDF2 keyLength {key_length} does not match {_CIPHER_NAMES[cipher_oid]}")
    if len(iv) != AES_BLOCK:
        raise KeyFileError("AES-CBC IV must be 16 bytes")
    if not ciphertext or len(ciphertext) % AES_BLOCK:
        raise KeyFileError("encrypted key data is truncated (not a whole number of AES blocks)")
    key = _pbkdf2(passphrase, salt, iterations, key_bytes, _PRFS[prf_oid])
    return _cbc_decrypt(algorithms.AES(key), iv, ciphertext)


def _cbc_decrypt(algorithm: BlockCipherAlgorithm, iv: bytes, ciphertext: bytes) -> bytearray:
    """CBC-decrypt and strip PKCS#7 padding in place; bad padding means a wrong passphrase."""
    block = algorithm.block_size // 8
    out = bytearray(len(ciphertext) + block - 1)
    decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
    n = decryptor.update_into(ciphertext, out)
    decryptor.finalize()
    del out[n:]
    pad = out[-1] if out else 0
    if not 1 <= pad <= block or any(b != pad for b in out[-pad:]):
        wipe(out)
        raise WrongPassphraseError("wrong passphrase")
    out[-pad:] = bytes(pad)  # zero the padding before dropping it
    del out[-pad:]
    return out


# --------------------------------------------------------------------------- RFC 1423 (OpenSSL "DEK-Info")

# DEK-Info cipher name -> key length in bytes
_RFC1423: Final = {
    "DES-CBC": 8,
    "DES-EDE3-CBC": 24,
    "AES-128-CBC": 16,
    "AES-192-CBC": 24,
    "AES-256-CBC": 32,
}


def decrypt_rfc1423(der: bytes, dek_info: str, passphrase: bytes) -> bytearray:
    """Decrypt a legacy ``Proc-Type: 4,ENCRYPTED`` PEM body (Go ``x509.DecryptPEMBlock``)."""
    name, _, iv_hex = dek_info.partition(",")
    name = name.strip().upper()
    key_bytes = _RFC1423.get(name)
    if key_bytes is None:
        raise KeyFileError(f"unsupported legacy PEM cipher {name or '(none)'}")
    try:
        iv = bytes.fromhex(iv_hex.strip())
    except ValueError as e:
        raise KeyFileError("malformed DEK-Info header (the IV is not hex)") from e
    block = 8 if name.startswith("DES") else AES_BLOCK
    if len(iv) != block:
        raise KeyFileError(f"malformed DEK-Info header (the IV must be {block} bytes)")
    if not der or len(der) % block:
        raise KeyFileError("encrypted key data is truncated (not a whole number of cipher blocks)")
    key = _evp_bytes_to_key(passphrase, iv[:8], key_bytes)
    cipher: BlockCipherAlgorithm
    if name == "DES-CBC":
        cipher = TripleDES(key * 3)  # single DES == 3DES with K1 = K2 = K3
    elif name == "DES-EDE3-CBC":
        cipher = TripleDES(key)
    else:
        cipher = algorithms.AES(key)
    return _cbc_decrypt(cipher, iv, der)


def _evp_bytes_to_key(passphrase: bytes, salt: bytes, length: int) -> bytes:
    """OpenSSL ``EVP_BytesToKey`` with MD5 and one iteration, as RFC 1423 PEM encryption uses it."""
    out = b""
    digest = b""
    while len(out) < length:
        digest = hashlib.md5(digest + passphrase + salt, usedforsecurity=False).digest()
        out += digest
    return out[:length]
