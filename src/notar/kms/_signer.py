""":class:`KmsSigner`: a :class:`~notar.crypto.DigestSigner` whose private key never leaves AWS KMS.

* The public key comes from ``GetPublicKey`` (:meth:`KmsSigner.open`) or from a stored reference that
  already holds it (no call at all); the Notary key ID is computed from it like for any ECDSA key.
* Every signature is a ``Sign`` call with ``MessageType=DIGEST``: the message is hashed here (a Notary v1
  targets file is larger than the 4,096 bytes ``RAW`` allows) and only the digest goes to KMS.
* KMS answers ECDSA signatures in DER; :meth:`KmsSigner.sign` (Notary v1) converts them to the fixed-width
  ``R || S`` notary writes, :meth:`KmsSigner.sign_digest` returns DER as the formats expect it.
* Each signature KMS returns is verified here, with the public key, over the digest that was sent, before
  it is used: a key behind an alias that now points elsewhere, or an endpoint that hashes the digest
  again (moto 5.2.5 does), fails here with a one-line error instead of publishing signatures nobody can
  verify.

Key specs: ``ECC_NIST_P256`` signs everything (Notary v1, Notation ES256, cosign); ``ECC_NIST_P384`` /
``ECC_NIST_P521`` and ``RSA_2048/3072/4096`` (RSASSA-PSS) sign Notation only; other specs (secp256k1, SM2,
symmetric and HMAC keys) are refused when the key is opened.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from notar.crypto import METHOD_ECDSA, CryptoError, InvalidKeyError, PublicKey, ecdsa_der_to_raw
from notar.kms._client import KmsClient, RetryPolicy, call, client_for
from notar.kms._uri import KeyURI, parse_key_uri
from notar.kms.errors import KmsError, KmsKeySpecError, KmsKeyUsageError, KmsSignatureError

__all__ = ["NOTARY_V1_KEY_SPEC", "KmsSigner", "key_spec_of"]

NOTARY_V1_KEY_SPEC: Final = "ECC_NIST_P256"
_EC_SPECS: Final = {"secp256r1": "ECC_NIST_P256", "secp384r1": "ECC_NIST_P384", "secp521r1": "ECC_NIST_P521"}
_ECDSA_ALGORITHMS: Final = {"ECC_NIST_P256": "sha256", "ECC_NIST_P384": "sha384", "ECC_NIST_P521": "sha512"}
_RSA_SIZES: Final = (2048, 3072, 4096)
_HASHES: Final = {"sha256": "SHA_256", "sha384": "SHA_384", "sha512": "SHA_512"}


def key_spec_of(public_key: PublicKey) -> str:
    """The KMS key spec of *public_key* (``ECC_NIST_P256``, ``RSA_3072``, ...); :class:`KmsKeySpecError`
    for keys notar cannot sign with in KMS."""
    try:
        key = public_key.bare().to_crypto()
    except CryptoError as e:
        raise KmsKeySpecError(f"the KMS public key cannot be read: {e}") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        spec = _EC_SPECS.get(key.curve.name)
        if spec is None:
            raise KmsKeySpecError(
                f"KMS keys on curve {key.curve.name} sign neither Notary v1 nor Notation signatures "
                "(use ECC_NIST_P256; ECC_NIST_P384/P521 or RSA for Notation only)"
            )
        return spec
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in _RSA_SIZES:
            raise KmsKeySpecError(f"RSA keys of {key.key_size} bits are not KMS keys notar signs with")
        return f"RSA_{key.key_size}"
    raise KmsKeySpecError(f"{public_key.keytype} keys are not KMS signing keys")


class KmsSigner:
    """Signs through AWS KMS; implements :class:`~notar.crypto.Signer` and :class:`~notar.crypto.DigestSigner`.

    *public_key* is the key KMS holds (from ``GetPublicKey``: use :meth:`open`, or from a stored
    reference). *client* defaults to boto3's (standard credential chain), created on the first call.
    :attr:`sign_calls` counts the ``Sign`` calls made (one per signed role and format).
    """

    __slots__ = ("_client", "_lock", "_public", "_retry", "key_spec", "sign_calls", "uri")

    def __init__(
        self,
        uri: KeyURI | str,
        public_key: PublicKey,
        *,
        client: KmsClient | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.uri = uri if isinstance(uri, KeyURI) else parse_key_uri(uri)
        self._public = public_key.bare()
        self.key_spec = key_spec_of(self._public)
        self._client = client
        self._retry = retry
        self._lock = threading.Lock()
        self.sign_calls = 0

    @classmethod
    def open(
        cls, uri: KeyURI | str, *, client: KmsClient | None = None, retry: RetryPolicy | None = None
    ) -> KmsSigner:
        """The signer for *uri*, with its public key from ``GetPublicKey`` (one KMS call).

        Refuses (one line) keys that cannot sign: symmetric keys, ``ENCRYPT_DECRYPT`` usage, key specs
        notar does not sign with; and every KMS failure (denied, disabled, pending deletion, not found,
        throttled, unreachable) as a :class:`~notar.kms.errors.KmsError`.
        """
        parsed = uri if isinstance(uri, KeyURI) else parse_key_uri(uri)
        kms = client or client_for(parsed)
        answer = call(kms, "GetPublicKey", parsed, retry=retry, KeyId=parsed.key)
        usage = str(answer.get("KeyUsage") or "")
        if usage and usage != "SIGN_VERIFY":
            raise KmsKeyUsageError(
                f"KMS key {parsed} has key usage {usage}: signing needs an asymmetric key created with "
                "KeyUsage SIGN_VERIFY (ECC_NIST_P256 for Notary v1)"
            )
        der = answer.get("PublicKey")
        if not isinstance(der, bytes | bytearray) or not der:
            raise KmsError(f"AWS KMS GetPublicKey on key {parsed} returned no public key")
        try:
            public = PublicKey.from_crypto(_load_spki(bytes(der)))
        except CryptoError as e:
            raise KmsKeySpecError(f"KMS key {parsed}: {e}") from None
        return cls(parsed, public, client=kms, retry=retry)

    # -- the Signer protocol ----------------------------------------------------------------------------
    @property
    def public_key(self) -> PublicKey:
        return self._public

    @property
    def key_id(self) -> str:
        """The canonical Notary key ID of the KMS key's public key."""
        return self._public.key_id

    def check_notary_v1(self) -> None:
        """Raise :class:`KmsKeySpecError` unless the key can sign Notary v1 trust data (``ECC_NIST_P256``)."""
        if self.key_spec != NOTARY_V1_KEY_SPEC:
            raise KmsKeySpecError(
                f"KMS key {self.uri} is {self.key_spec}: Notary v1 (docker trust) signatures need an "
                f"{NOTARY_V1_KEY_SPEC} key ({self.key_spec} keys can sign Notation signatures only)"
            )

    def sign(self, message: bytes) -> tuple[str, bytes]:
        """Sign *message* the Notary v1 way: ECDSA P-256 over SHA-256, fixed-width ``R || S``."""
        self.check_notary_v1()
        digest = hashlib.sha256(message).digest()
        der = self.sign_digest(digest, hashes.SHA256())
        curve = self._public.to_crypto()
        assert isinstance(curve, ec.EllipticCurvePublicKey)
        return METHOD_ECDSA, ecdsa_der_to_raw(der, curve.curve)

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """Sign a precomputed *algorithm* hash with ``MessageType=DIGEST`` (see
        :meth:`notar.crypto.DigestSigner.sign_digest`): DER for ECDSA, RSASSA-PSS for RSA.

        KMS ties the hash to the curve (P-256: SHA-256, P-384: SHA-384, P-521: SHA-512); another hash is a
        :class:`KmsKeySpecError`. The signature is verified with the public key before it is returned.
        """
        if len(digest) != algorithm.digest_size:
            raise InvalidKeyError(
                f"a {algorithm.name} digest has {algorithm.digest_size} bytes, got {len(digest)}"
            )
        signing_algorithm = self._signing_algorithm(algorithm)
        kms = self._client_now()
        answer = call(
            kms,
            "Sign",
            self.uri,
            retry=self._retry,
            KeyId=self.uri.key,
            Message=digest,
            MessageType="DIGEST",
            SigningAlgorithm=signing_algorithm,
        )
        with self._lock:
            self.sign_calls += 1
        signature = _signature_of(answer, self.uri)
        self._check(signature, digest, algorithm)
        return signature

    # -- helpers ------------------------------------------------------------------------------------------
    def _client_now(self) -> KmsClient:
        if self._client is None:
            self._client = client_for(self.uri)
        return self._client

    def _signing_algorithm(self, algorithm: hashes.HashAlgorithm) -> str:
        suffix = _HASHES.get(algorithm.name)
        if self.key_spec.startswith("RSA_"):
            if suffix is None:
                raise KmsKeySpecError(f"KMS RSA keys sign SHA-256/384/512 digests, not {algorithm.name}")
            return f"RSASSA_PSS_{suffix}"
        wanted = _ECDSA_ALGORITHMS[self.key_spec]
        if algorithm.name != wanted:
            raise KmsKeySpecError(
                f"KMS key {self.uri} is {self.key_spec}, which signs {wanted.upper()} digests only "
                f"({algorithm.name.upper()} was asked: this format needs another key spec)"
            )
        return f"ECDSA_{_HASHES[wanted]}"

    def _check(self, signature: bytes, digest: bytes, algorithm: hashes.HashAlgorithm) -> None:
        key = self._public.to_crypto()
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, digest, ec.ECDSA(Prehashed(algorithm)))
            elif isinstance(key, rsa.RSAPublicKey):
                pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
                key.verify(signature, digest, pss, Prehashed(algorithm))
            else:  # pragma: no cover - key_spec_of refused it
                raise KmsKeySpecError(f"{self._public.keytype} keys are not KMS signing keys")
        except (InvalidSignature, ValueError):
            raise KmsSignatureError(
                f"KMS key {self.uri} returned a signature that does not verify over the {algorithm.name.upper()} "
                f"digest with its public key {self.key_id[:7]}: the alias may point to another key now, or the "
                "endpoint hashed the digest again (MessageType=DIGEST ignored)"
            ) from None

    def __repr__(self) -> str:
        return f"KmsSigner({str(self.uri)!r}, {self.key_spec}, id={self.key_id[:12]})"


def _load_spki(der: bytes) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InvalidKeyError(f"the public key is not a DER SubjectPublicKeyInfo ({e})") from None


def _signature_of(answer: Mapping[str, Any], uri: KeyURI) -> bytes:
    signature = answer.get("Signature")
    if not isinstance(signature, bytes | bytearray) or not signature:
        raise KmsError(f"AWS KMS Sign on key {uri} returned no signature")
    return bytes(signature)
