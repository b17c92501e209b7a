"""Keys, key IDs and signatures exactly as Notary v1 computes them.

* :class:`PublicKey` -- a TUF key object (``keytype`` + public bytes) with its TUF and canonical key IDs
  and signature verification for the ``ecdsa``, ``rsapss`` and ``eddsa`` methods.
* :class:`PrivateKey` -- ECDSA P-256 (default), Ed25519 or RSA private keys that sign like notary.
* :class:`Signer` -- the protocol every signing backend (file key, KMS, ...) implements;
  :class:`DigestSigner` -- one that also signs precomputed hashes (what the OCI signature formats use).
* :func:`ecdsa_der_to_raw` / :func:`ecdsa_raw_to_der` -- DER <-> fixed-width ``R || S`` ECDSA signatures.
* :func:`make_root_certificate` -- the self-signed certificate notary wraps root keys in.
"""

from __future__ import annotations

from notar.crypto._ecdsa import ecdsa_der_to_raw, ecdsa_raw_to_der, ecdsa_width
from notar.crypto._keys import (
    KEYTYPE_ECDSA,
    KEYTYPE_ECDSA_X509,
    KEYTYPE_ED25519,
    KEYTYPE_RSA,
    KEYTYPE_RSA_X509,
    METHOD_ECDSA,
    METHOD_EDDSA,
    METHOD_RSAPSS,
    DigestSigner,
    PrivateKey,
    PublicKey,
    Signer,
)
from notar.crypto._pem import encode_pem, pem_blocks
from notar.crypto._x509 import (
    CertificateProblem,
    certificate_problems,
    load_certificate_bundle,
    make_root_certificate,
)
from notar.crypto.errors import CryptoError, InvalidKeyError, UnsupportedKeyError

__all__ = [
    "KEYTYPE_ECDSA",
    "KEYTYPE_ECDSA_X509",
    "KEYTYPE_ED25519",
    "KEYTYPE_RSA",
    "KEYTYPE_RSA_X509",
    "METHOD_ECDSA",
    "METHOD_EDDSA",
    "METHOD_RSAPSS",
    "CertificateProblem",
    "CryptoError",
    "DigestSigner",
    "InvalidKeyError",
    "PrivateKey",
    "PublicKey",
    "Signer",
    "UnsupportedKeyError",
    "certificate_problems",
    "ecdsa_der_to_raw",
    "ecdsa_raw_to_der",
    "ecdsa_width",
    "encode_pem",
    "load_certificate_bundle",
    "make_root_certificate",
    "pem_blocks",
]
