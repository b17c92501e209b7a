"""The one key a Notation or cosign signature is made with: the signer's, from the trust directory.

Notary v1 signs with every delegation key the trust directory holds for the repository
(:class:`notar.client.Repository` picks them). Notation and cosign make one signature per digest, so they
need one key: the key stored for signer NAME (``notar key generate NAME`` / ``notar key load --name
NAME``, or a KMS reference ``private/<key ID>.kms`` added as NAME), and for Notation its certificate
chain kept beside it (``notar cert generate NAME``). Without ``--signer``, the trust directory must hold
the keys of exactly one signer.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from notar.client import trust_dir_keys
from notar.crypto import DigestSigner
from notar.keystore import FileKeyStore, KeystoreError
from notar.signing._model import SigningSetupError

__all__ = ["AmbiguousSignerError", "SignerKey", "SigningKey", "choose_signer_key", "open_signing_key"]

#: Key roles that are not signers (the repository's own keys).
_NOT_SIGNERS = frozenset({"root", "targets", "snapshot", "timestamp", ""})


class AmbiguousSignerError(SigningSetupError):
    """Several keys could sign: the caller must say which (``--signer NAME``)."""


@dataclass(frozen=True)
class SignerKey:
    """Which key: signer *name*'s key *key_id* (a key file or a key service reference)."""

    name: str
    key_id: str
    referenced: bool = False

    @property
    def short(self) -> str:
        return self.key_id[:7]


@dataclass(frozen=True)
class SigningKey:
    """The key, ready: a :class:`DigestSigner` and the certificate chain kept with it (leaf first).

    ``chain_error`` says why a stored chain could not be read: only Notation needs the chain, so that
    fails Notation, not cosign.
    """

    name: str
    key_id: str
    signer: DigestSigner
    chain: tuple[x509.Certificate, ...] | None
    chain_error: str | None = None

    @property
    def short(self) -> str:
        return self.key_id[:7]

    def require_chain(self) -> tuple[x509.Certificate, ...]:
        """The chain, or a one-line :class:`SigningSetupError` naming the command that makes one."""
        if self.chain_error is not None:
            raise SigningSetupError(
                f"signer {self.name}'s certificate cannot be read: {self.chain_error}; replace it with "
                f"`notar cert generate {self.name} --force` (or `notar cert import {self.name} CHAIN.pem --force`)"
            )
        if not self.chain:
            raise SigningSetupError(
                f"signer {self.name}'s key {self.short} has no certificate: Notation signatures need one; "
                f"make it with `notar cert generate {self.name}` (or `notar cert import {self.name} CHAIN.pem`)"
            )
        return self.chain


def _signer_keys(store: FileKeyStore) -> list[SignerKey]:
    keys = [SignerKey(i.role, i.key_id) for i in store.list() if i.role not in _NOT_SIGNERS]
    held = {k.key_id for k in keys}
    keys += [
        SignerKey(r.role, r.key_id, referenced=True)
        for r in store.references()
        if r.role not in _NOT_SIGNERS and r.key_id not in held
    ]
    return keys


def _has_chain(store: FileKeyStore, key_id: str) -> bool:
    try:
        return store.certificate_chain(key_id) is not None
    except KeystoreError:
        return False


def choose_signer_key(store: FileKeyStore, name: str | None) -> SignerKey:
    """The key to sign with: signer *name*'s, or the only signer's when *name* is ``None``.

    A signer with several keys: the one with a certificate, when exactly one has it (so Notation and
    cosign sign with the same key).
    Raises :class:`AmbiguousSignerError` when the choice is ambiguous and :class:`SigningSetupError`
    when there is no such key (one line each).
    """
    keys = _signer_keys(store)
    if name is None:
        names = sorted({k.name for k in keys})
        if not names:
            raise SigningSetupError(
                f"no signer key in {store.private_dir}: make one with `notar key generate NAME` "
                "(or load one with `notar key load --name NAME`)"
            )
        if len(names) > 1:
            raise AmbiguousSignerError(
                f"the trust directory holds the keys of {len(names)} signers ({', '.join(names)}): "
                "choose one with --signer NAME"
            )
        name = names[0]
    found = [k for k in keys if k.name == name]
    if not found:
        raise SigningSetupError(
            f"no key for signer {name} in {store.private_dir}: make one with `notar key generate {name}` "
            f"(or load one with `notar key load --name {name}`)"
        )
    if len(found) > 1:
        certified = [k for k in found if _has_chain(store, k.key_id)]
        if len(certified) == 1:
            return certified[0]
    if len(found) > 1:
        ids = ", ".join(k.short for k in found)
        raise AmbiguousSignerError(
            f"signer {name} has {len(found)} keys ({ids}) and not exactly one of them has a certificate: "
            f"give the one to sign with a certificate (`notar cert generate {name} --key-id ID`)"
        )
    return found[0]


def open_signing_key(store: FileKeyStore, key: SignerKey) -> SigningKey:
    """Unlock (a key file) or open (a KMS reference) the chosen key, with its certificate chain.

    The passphrase comes from the store's sources (environment, else a prompt on a terminal). Raises
    :class:`notar.errors.NotarError` subclasses with one-line messages.
    """
    signer, _role = trust_dir_keys(store).get(key.key_id)
    if not isinstance(signer, DigestSigner):
        raise SigningSetupError(
            f"signer {key.name}'s key {key.short} cannot sign a precomputed digest, which Notation and "
            "cosign signatures need"
        )
    try:
        chain = store.certificate_chain(key.key_id)
    except KeystoreError as e:
        return SigningKey(key.name, key.key_id, signer, None, " ".join(str(e).split()))
    return SigningKey(key.name, key.key_id, signer, chain)
