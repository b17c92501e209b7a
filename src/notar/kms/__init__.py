"""Signing keys that never leave AWS KMS: ``awskms://`` references, :class:`KmsSigner`, certificates.

Layer: above :mod:`notar.crypto` (and the pure :mod:`notar.notation` rules), beside :mod:`notar.keystore`,
below ``client``, ``release``, ``server`` and ``cli``. The network I/O (boto3) lives here, never in
``crypto``; boto3 is imported only when a KMS key is first used.

* :func:`parse_key_uri` / :class:`KeyURI` / :func:`is_key_uri` -- cosign's reference form,
  ``awskms://[ENDPOINT]/{key id | key ARN | alias/NAME | alias ARN}``.
* :class:`KmsSigner` -- a :class:`~notar.crypto.DigestSigner`: ``GetPublicKey`` once, ``Sign`` with
  ``MessageType=DIGEST`` per signature, DER -> ``R || S`` for Notary v1, each signature verified locally.
* :func:`notar.kms.certificates.self_signed_signing_certificate` -- a Notation signing certificate signed
  through the key (a separate module: it needs :mod:`notar.notation`, which signing v1 does not).
* Errors (:class:`KmsError` and its kinds) are one line naming the action, the key and the cause.
"""

from __future__ import annotations

from notar.kms._client import KmsClient, RetryPolicy, client_for
from notar.kms._signer import NOTARY_V1_KEY_SPEC, KmsSigner, key_spec_of
from notar.kms._uri import SCHEME, KeyURI, is_key_uri, parse_key_uri
from notar.kms.errors import (
    KeyURIError,
    KmsAccessDeniedError,
    KmsError,
    KmsKeySpecError,
    KmsKeyStateError,
    KmsKeyUsageError,
    KmsSignatureError,
    KmsThrottledError,
    KmsUnavailableError,
)

__all__ = [
    "NOTARY_V1_KEY_SPEC",
    "SCHEME",
    "KeyURI",
    "KeyURIError",
    "KmsAccessDeniedError",
    "KmsClient",
    "KmsError",
    "KmsKeySpecError",
    "KmsKeyStateError",
    "KmsKeyUsageError",
    "KmsSignatureError",
    "KmsSigner",
    "KmsThrottledError",
    "KmsUnavailableError",
    "RetryPolicy",
    "client_for",
    "is_key_uri",
    "key_spec_of",
    "parse_key_uri",
]
