"""Errors of the keystore layer.

Every message is a one-line sentence meant for the user. None of them ever contains a passphrase or key
material; key IDs are shortened to their first seven characters, as notary prints them.
"""

from __future__ import annotations

from notar.errors import NotarError

__all__ = [
    "CertificateExistsError",
    "CertificateFileError",
    "CertificateMismatchError",
    "InsecureKeyFileError",
    "KeyExistsError",
    "KeyFileError",
    "KeyNotFoundError",
    "KeyStorageError",
    "KeystoreError",
    "PassphraseUnavailableError",
    "WrongPassphraseError",
]


class KeystoreError(NotarError):
    """Something went wrong reading, writing or unlocking a private key."""


class KeyFileError(KeystoreError):
    """A key file is malformed, truncated or uses an unsupported algorithm or encryption."""


class WrongPassphraseError(KeystoreError):
    """The passphrase does not decrypt the key (or the retriever gave up after wrong passphrases)."""


class PassphraseUnavailableError(KeystoreError):
    """No passphrase can be obtained: no environment variable is set and there is no terminal to ask."""


class KeyNotFoundError(KeystoreError):
    """No private key with that ID is in the key store."""


class KeyExistsError(KeystoreError):
    """A different key file is already stored under that key ID (for example with another role)."""


class InsecureKeyFileError(KeystoreError):
    """A private key file to import is readable or writable by group or others."""


class KeyStorageError(KeystoreError, OSError):
    """The trust directory or a key file in it cannot be created, written or removed.

    Also an :class:`OSError`, for callers that catch those; the message names the path and the reason.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CertificateFileError(KeystoreError, ValueError):
    """A certificate chain (stored beside a key, or given to store) is not a PEM bundle of certificates."""


class CertificateMismatchError(KeystoreError, ValueError):
    """The leaf of a certificate chain does not certify the key it is stored for."""


class CertificateExistsError(KeystoreError):
    """A key already has a stored certificate chain and replacing it was not asked for."""
