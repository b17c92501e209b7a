"""Public and private keys as Notary v1 encodes, identifies and uses them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from notar.crypto._pem import load_certificate_bundle, pem_blocks
from notar.crypto.errors import InvalidKeyError, UnsupportedKeyError
from notar.encoding import EncodingError, b64decode, b64encode, canonical_json, go_fold

__all__ = [
    "KEYTYPE_ECDSA",
    "KEYTYPE_ECDSA_X509",
    "KEYTYPE_ED25519",
    "KEYTYPE_RSA",
    "KEYTYPE_RSA_X509",
    "METHOD_ECDSA",
    "METHOD_EDDSA",
    "METHOD_RSAPSS",
    "PrivateKey",
    "DigestSigner",
    "PublicKey",
    "Signer",
]

KEYTYPE_ECDSA = "ecdsa"
KEYTYPE_ECDSA_X509 = "ecdsa-x509"
KEYTYPE_RSA = "rsa"
KEYTYPE_RSA_X509 = "rsa-x509"
KEYTYPE_ED25519 = "ed25519"

METHOD_ECDSA = "ecdsa"
METHOD_RSAPSS = "rsapss"
METHOD_EDDSA = "eddsa"
_METHOD_RSA_PKCS1V15 = "rsapkcs1v15"
_METHOD_PYCRYPTO_PSS = "pycrypto-pkcs#1 pss"

_X509_TYPES = {KEYTYPE_ECDSA_X509: KEYTYPE_ECDSA, KEYTYPE_RSA_X509: KEYTYPE_RSA}
_METHODS_BY_KEYTYPE = {
    KEYTYPE_ECDSA: {METHOD_ECDSA},
    KEYTYPE_ECDSA_X509: {METHOD_ECDSA},
    KEYTYPE_RSA: {METHOD_RSAPSS, _METHOD_RSA_PKCS1V15, _METHOD_PYCRYPTO_PSS},
    KEYTYPE_RSA_X509: {METHOD_RSAPSS, _METHOD_RSA_PKCS1V15, _METHOD_PYCRYPTO_PSS},
    KEYTYPE_ED25519: {METHOD_EDDSA},
}
_MIN_RSA_BITS = 2048
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

CryptoPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
CryptoPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _key_id(keytype: str, public: bytes) -> str:
    doc = {"keytype": keytype, "keyval": {"private": None, "public": b64encode(public)}}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def _no_folded_fields(value: dict[str, Any], known: tuple[str, ...], what: str) -> None:
    """Refuse a key Go's decoder would fold onto one of the *known* fields (``"KeyVal"``): a split view."""
    folded = {go_fold(k): k for k in known}
    for key in value:
        field_name = folded.get(go_fold(key))
        if field_name is not None and field_name != key:
            raise InvalidKeyError(f"{what}: key {key!r} is read as {field_name!r} by Go clients")


def _spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A TUF key object: ``{"keytype": ..., "keyval": {"private": null, "public": <base64>}}``.

    ``public`` holds the bytes inside the base64: DER SubjectPublicKeyInfo for ``ecdsa``/``rsa``, the PEM
    text of a certificate (chain, leaf first) for ``*-x509``, the raw 32 bytes for ``ed25519``. Unknown
    key types are carried unchanged and verify nothing.
    """

    keytype: str
    public: bytes
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, value: Any, *, what: str = "key") -> PublicKey:
        """Parse a key object from metadata (``private`` must be null or absent)."""
        if not isinstance(value, dict):
            raise InvalidKeyError(f"{what}: expected an object")
        _no_folded_fields(value, ("keytype", "keyval"), what)
        keytype, keyval = value.get("keytype"), value.get("keyval")
        if not isinstance(keytype, str) or not keytype:
            raise InvalidKeyError(f"{what}: missing or invalid keytype")
        if not isinstance(keyval, dict) or not isinstance(keyval.get("public"), str):
            raise InvalidKeyError(f"{what}: missing or invalid keyval.public")
        _no_folded_fields(keyval, ("public", "private"), f"{what}.keyval")
        if keyval.get("private") not in (None, ""):
            raise InvalidKeyError(f"{what}: metadata must not carry private key material")
        try:
            return cls(keytype, b64decode(keyval["public"], what=f"{what}.keyval.public"))
        except EncodingError as e:
            raise InvalidKeyError(str(e)) from e

    @classmethod
    def from_crypto(cls, key: CryptoPublicKey) -> PublicKey:
        """Wrap a ``cryptography`` public key as a plain (non-certificate) TUF key."""
        if isinstance(key, ec.EllipticCurvePublicKey):
            return cls(KEYTYPE_ECDSA, _spki(key))
        if isinstance(key, rsa.RSAPublicKey):
            return cls(KEYTYPE_RSA, _spki(key))
        if isinstance(key, ed25519.Ed25519PublicKey):
            return cls(
                KEYTYPE_ED25519, key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            )
        raise UnsupportedKeyError(f"unsupported public key type {type(key).__name__}")

    @classmethod
    def from_certificate(cls, cert: x509.Certificate, *chain: x509.Certificate) -> PublicKey:
        """An ``ecdsa-x509``/``rsa-x509`` key holding the PEM of *cert* (then *chain*), as Go encodes it."""
        pub = cert.public_key()
        if isinstance(pub, ec.EllipticCurvePublicKey):
            keytype = KEYTYPE_ECDSA_X509
        elif isinstance(pub, rsa.RSAPublicKey):
            keytype = KEYTYPE_RSA_X509
        else:
            raise UnsupportedKeyError("only ECDSA and RSA certificates can be TUF keys")
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain))
        return cls(keytype, pem)

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        """Parse a ``PUBLIC KEY`` or ``CERTIFICATE`` PEM (headers such as ``role:`` are ignored)."""
        blocks = pem_blocks(data)
        if not blocks:
            raise InvalidKeyError("no PEM block found")
        kind, _headers, der = blocks[0]
        try:
            if kind == "CERTIFICATE":
                certs = [x509.load_der_x509_certificate(b) for k, _h, b in blocks if k == "CERTIFICATE"]
                return cls.from_certificate(certs[0], *certs[1:])
            if kind == "PUBLIC KEY":
                loaded = serialization.load_der_public_key(der)
            else:
                raise InvalidKeyError(f"expected a PUBLIC KEY or CERTIFICATE PEM, found {kind}")
        except (ValueError, UnsupportedAlgorithm) as e:
            raise InvalidKeyError(f"cannot parse {kind} PEM: {e}") from e
        if not isinstance(loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
            raise UnsupportedKeyError(f"unsupported public key type {type(loaded).__name__}")
        return cls.from_crypto(loaded)

    # -- identity -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The metadata form, ``private`` always present as null."""
        return {"keytype": self.keytype, "keyval": {"private": None, "public": b64encode(self.public)}}

    @property
    def key_id(self) -> str:
        """The TUF key ID: sha256 of the canonical key object."""
        kid = self._cache.get("key_id")
        if kid is None:
            kid = self._cache["key_id"] = _key_id(self.keytype, self.public)
        return str(kid)

    @property
    def is_certificate(self) -> bool:
        return self.keytype in _X509_TYPES

    def certificates(self) -> list[x509.Certificate]:
        """The certificates of an ``*-x509`` key, leaf first."""
        if not self.is_certificate:
            return []
        certs = self._cache.get("certs")
        if certs is None:
            certs = self._cache["certs"] = load_certificate_bundle(self.public)
        return list(certs)

    def bare(self) -> PublicKey:
        """The key without its certificate (itself for non-certificate keys)."""
        if not self.is_certificate:
            return self
        bare = self._cache.get("bare")
        if bare is None:
            leaf = self.certificates()[0]
            bare = self._cache["bare"] = PublicKey(_X509_TYPES[self.keytype], _spki(leaf.public_key()))  # type: ignore[arg-type]
        assert isinstance(bare, PublicKey)
        return bare

    @property
    def canonical_key_id(self) -> str:
        """The ID notary names private key files by: for certificates, the ID of the bare public key."""
        return self.bare().key_id

    def to_crypto(self) -> CryptoPublicKey:
        """The ``cryptography`` public key (raises :class:`UnsupportedKeyError` for unknown types)."""
        loaded = self._cache.get("crypto")
        if loaded is not None:
            return loaded  # type: ignore[no-any-return]
        kt = self.keytype
        try:
            if kt in _X509_TYPES:
                loaded = self.bare().to_crypto()
            elif kt in (KEYTYPE_ECDSA, KEYTYPE_RSA):
                loaded = serialization.load_der_public_key(self.public)
                want = ec.EllipticCurvePublicKey if kt == KEYTYPE_ECDSA else rsa.RSAPublicKey
                if not isinstance(loaded, want):
                    raise InvalidKeyError(f"{kt} key holds a {type(loaded).__name__}")
            elif kt == KEYTYPE_ED25519:
                if len(self.public) != 32:
                    raise InvalidKeyError("ed25519 public key must be 32 bytes")
                loaded = ed25519.Ed25519PublicKey.from_public_bytes(self.public)
            else:
                raise UnsupportedKeyError(f"unsupported key type {kt!r}")
        except (ValueError, UnsupportedAlgorithm) as e:
            raise InvalidKeyError(f"invalid {kt} public key: {e}") from e
        self._cache["crypto"] = loaded
        return loaded

    # -- verification -------------------------------------------------------------------------------
    def verify(self, message: bytes, signature: bytes, method: str) -> bool:
        """True when *signature* by this key over *message* is valid for *method* (notary's rules).

        Unknown key types, mismatched methods, wrong lengths and malformed keys all give False.
        """
        method = method.lower()
        if method not in _METHODS_BY_KEYTYPE.get(self.keytype, ()):
            return False
        try:
            key = self.to_crypto()
        except (InvalidKeyError, UnsupportedKeyError):
            return False
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                size = (key.curve.key_size + 7) // 8
                if len(signature) != 2 * size:
                    return False
                r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
                key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
            elif isinstance(key, rsa.RSAPublicKey):
                if key.key_size < _MIN_RSA_BITS:
                    return False
                pad = padding.PKCS1v15() if method == _METHOD_RSA_PKCS1V15 else _PSS
                key.verify(signature, message, pad, hashes.SHA256())
            else:
                key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@runtime_checkable
class Signer(Protocol):
    """Anything that signs like a notary key: a file key today, a KMS key tomorrow."""

    @property
    def public_key(self) -> PublicKey:
        """The bare public key (its ``key_id`` is the canonical key ID)."""
        ...

    def sign(self, message: bytes) -> tuple[str, bytes]:
        """Sign *message*; return ``(method, signature)`` in notary's encoding."""
        ...


@runtime_checkable
class DigestSigner(Protocol):
    """A :class:`Signer` that also signs a precomputed hash (AWS KMS ``MessageType=DIGEST``).

    The OCI signature formats sign with the hash their algorithm names (Notation ES384 signs SHA-384,
    cosign signs SHA-256), so they hash the message themselves and hand over only the digest: no format
    needs the key material or knows where the key lives (ADR 0008, seam 2).
    """

    @property
    def public_key(self) -> PublicKey:
        """The bare public key (its ``key_id`` is the canonical key ID)."""
        ...

    def sign(self, message: bytes) -> tuple[str, bytes]:
        """Sign *message*; return ``(method, signature)`` in notary's encoding."""
        ...

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """Sign *digest* (the *algorithm* hash of the message).

        ECDSA: the DER ``Ecdsa-Sig-Value`` (as KMS returns it); RSA: RSASSA-PSS with MGF1 of the same
        hash and a salt as long as the hash (KMS ``RSASSA_PSS_SHA_*``, JWS/COSE ``PS*``).
        """
        ...


class PrivateKey:
    """An in-memory private key that signs with notary's methods."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: CryptoPrivateKey) -> None:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1):
                raise UnsupportedKeyError(f"unsupported curve {key.curve.name}")
        elif isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < _MIN_RSA_BITS:
                raise UnsupportedKeyError(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
        elif not isinstance(key, ed25519.Ed25519PrivateKey):
            raise UnsupportedKeyError(f"unsupported private key type {type(key).__name__}")
        self._key = key
        self._public = PublicKey.from_crypto(key.public_key())

    @classmethod
    def generate(cls, keytype: str = KEYTYPE_ECDSA) -> PrivateKey:
        """A new key: ``ecdsa`` (P-256, the default), ``ed25519`` or ``rsa`` (3072 bits)."""
        if keytype == KEYTYPE_ECDSA:
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if keytype == KEYTYPE_ED25519:
            return cls(ed25519.Ed25519PrivateKey.generate())
        if keytype == KEYTYPE_RSA:
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=3072))
        raise UnsupportedKeyError(f"cannot generate keys of type {keytype!r} (ecdsa, ed25519 or rsa)")

    @property
    def crypto(self) -> CryptoPrivateKey:
        """The underlying ``cryptography`` key (for the keystore's serialisation)."""
        return self._key

    @property
    def keytype(self) -> str:
        return self._public.keytype

    @property
    def public_key(self) -> PublicKey:
        return self._public

    @property
    def key_id(self) -> str:
        """The canonical key ID (the private key file's name)."""
        return self._public.key_id

    def sign(self, message: bytes) -> tuple[str, bytes]:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
            size = (key.curve.key_size + 7) // 8
            return METHOD_ECDSA, r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(key, rsa.RSAPrivateKey):
            return METHOD_RSAPSS, key.sign(message, _PSS, hashes.SHA256())
        return METHOD_EDDSA, key.sign(message)

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """Sign a precomputed *algorithm* hash (see :meth:`DigestSigner.sign_digest`).

        ECDSA signatures are DER; RSA signatures RSASSA-PSS (MGF1 with *algorithm*, salt length = the
        hash length). Ed25519 signs messages, not hashes: :class:`UnsupportedKeyError`.
        """
        if len(digest) != algorithm.digest_size:
            raise InvalidKeyError(
                f"a {algorithm.name} digest has {algorithm.digest_size} bytes, got {len(digest)}"
            )
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(digest, ec.ECDSA(Prehashed(algorithm)))
        if isinstance(key, rsa.RSAPrivateKey):
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            return key.sign(digest, pss, Prehashed(algorithm))
        raise UnsupportedKeyError("ed25519 keys sign messages, not digests")

    def __repr__(self) -> str:  # never show key material
        return f"PrivateKey({self.keytype}, id={self.key_id[:12]})"
