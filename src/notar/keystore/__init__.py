"""Private keys as notary 0.7 and the docker CLI keep them: encrypted key files, passphrases, trust dirs.

* :func:`encode_private_key` / :func:`decode_private_key` -- notary's PEM key files (PKCS#8 PBES2 with
  PBKDF2-HMAC-SHA1 and AES-256-CBC, ``role:``/``gun:`` headers) and the legacy formats;
  :func:`encode_public_key` -- the ``PUBLIC KEY`` PEM that ``docker trust key generate`` writes.
* Passphrase sources (:class:`PassphraseRetriever`): :class:`EnvPassphrases` (notary's and docker's
  environment variables), :class:`PromptPassphrases`, :class:`CallbackPassphrases`,
  :class:`ChainPassphrases`.
* :class:`FileKeyStore` -- ``<trust_dir>/private/<key ID>.key``, shared with notary and docker, and
  the key's certificate chain beside it, ``<key ID>.crt`` (:class:`CertificateInfo`); for a key held by a
  key service (AWS KMS), a reference ``<key ID>.kms`` instead of the key file (:class:`KeyReference`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notar._lazy import lazy_getattr
from notar.keystore.errors import (
    CertificateExistsError,
    CertificateFileError,
    CertificateMismatchError,
    InsecureKeyFileError,
    KeyExistsError,
    KeyFileError,
    KeyNotFoundError,
    KeyStorageError,
    KeystoreError,
    PassphraseUnavailableError,
    WrongPassphraseError,
)

if TYPE_CHECKING:
    from notar.keystore._certs import (
        CERT_EXTENSION,
        CertificateInfo,
        decode_certificate_chain,
        encode_certificate_chain,
        same_public_key,
    )
    from notar.keystore._keyfile import DecodedKey, decode_private_key, encode_private_key, encode_public_key
    from notar.keystore._passphrase import (
        DOCKER_REPOSITORY_PASSPHRASE_ENV,
        DOCKER_ROOT_PASSPHRASE_ENV,
        CallbackPassphrases,
        ChainPassphrases,
        EnvPassphrases,
        PassphraseRetriever,
        PromptPassphrases,
        notary_passphrase_env,
    )
    from notar.keystore._refs import REFERENCE_EXTENSION, KeyReference, decode_reference, encode_reference
    from notar.keystore._store import FileKeyStore, KeyInfo, read_regular_file

# Imported on first use (notar._lazy): a command loads only the modules it needs.
_WHERE = {
    "_certs": (
        "CERT_EXTENSION",
        "CertificateInfo",
        "decode_certificate_chain",
        "encode_certificate_chain",
        "same_public_key",
    ),
    "_keyfile": ("DecodedKey", "decode_private_key", "encode_private_key", "encode_public_key"),
    "_passphrase": (
        "DOCKER_REPOSITORY_PASSPHRASE_ENV",
        "DOCKER_ROOT_PASSPHRASE_ENV",
        "CallbackPassphrases",
        "ChainPassphrases",
        "EnvPassphrases",
        "PassphraseRetriever",
        "PromptPassphrases",
        "notary_passphrase_env",
    ),
    "_refs": ("REFERENCE_EXTENSION", "KeyReference", "decode_reference", "encode_reference"),
    "_store": ("FileKeyStore", "KeyInfo", "read_regular_file"),
}
if not TYPE_CHECKING:
    __getattr__ = lazy_getattr(__name__, globals(), _WHERE)

__all__ = [
    "CERT_EXTENSION",
    "DOCKER_REPOSITORY_PASSPHRASE_ENV",
    "DOCKER_ROOT_PASSPHRASE_ENV",
    "CallbackPassphrases",
    "CertificateExistsError",
    "CertificateFileError",
    "CertificateInfo",
    "CertificateMismatchError",
    "ChainPassphrases",
    "DecodedKey",
    "EnvPassphrases",
    "FileKeyStore",
    "InsecureKeyFileError",
    "KeyExistsError",
    "KeyFileError",
    "KeyInfo",
    "KeyNotFoundError",
    "KeyReference",
    "KeyStorageError",
    "KeystoreError",
    "PassphraseRetriever",
    "PassphraseUnavailableError",
    "PromptPassphrases",
    "REFERENCE_EXTENSION",
    "WrongPassphraseError",
    "decode_certificate_chain",
    "decode_private_key",
    "decode_reference",
    "encode_certificate_chain",
    "encode_private_key",
    "encode_public_key",
    "encode_reference",
    "notary_passphrase_env",
    "read_regular_file",
    "same_public_key",
]
