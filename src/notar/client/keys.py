"""Where the client finds signing keys: the trust directory, memory, key services, or several in order.

A key source yields :class:`~notar.crypto.Signer` objects, not key material: a decrypted file key
(:class:`~notar.crypto.PrivateKey`) and a key that never leaves AWS KMS (:class:`~notar.kms.KmsSigner`)
are used the same way. :func:`trust_dir_keys` is what a :class:`~notar.client.Repository` signs with by
default: the trust directory's key files, then the keys its ``*.kms`` references point to.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from notar.crypto import PublicKey, Signer
from notar.keystore import FileKeyStore, KeyNotFoundError, KeyReference

__all__ = [
    "ChainedKeys",
    "KeySource",
    "MemoryKeys",
    "ReferencedKeys",
    "held_key_ids",
    "open_reference",
    "trust_dir_keys",
]


@runtime_checkable
class KeySource(Protocol):
    """Signing keys by canonical key ID (``FileKeyStore`` is one)."""

    def __contains__(self, key_id: object) -> bool: ...

    def get(self, key_id: str) -> tuple[Signer, str]:
        """The signer and its role name; raises ``KeyNotFoundError``."""
        ...


class MemoryKeys:
    """Keys held only in memory (release pipelines: nothing is written to disk)."""

    def __init__(self, keys: Iterable[tuple[Signer, str]] = ()) -> None:
        self._keys = {key.public_key.key_id: (key, role) for key, role in keys}

    def add(self, key: Signer, role: str) -> None:
        self._keys[key.public_key.key_id] = (key, role)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def get(self, key_id: str) -> tuple[Signer, str]:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyNotFoundError(f"no private key {key_id[:12]} in memory") from None

    def clear(self) -> None:
        self._keys.clear()


class ChainedKeys:
    """The first source that has the key wins."""

    def __init__(self, *sources: KeySource) -> None:
        self.sources = sources

    def __contains__(self, key_id: object) -> bool:
        return any(key_id in s for s in self.sources)

    def get(self, key_id: str) -> tuple[Signer, str]:
        for source in self.sources:
            if key_id in source:
                return source.get(key_id)
        raise KeyNotFoundError(f"no private key {key_id[:12]}")


def open_reference(ref: KeyReference) -> Signer:
    """The signer for a stored reference: ``awskms://`` keys (no KMS call until the first signature)."""
    from notar.kms import KmsSigner  # boto3 and KMS code only when a KMS key is used

    return KmsSigner(ref.uri, ref.public_key)


class ReferencedKeys:
    """Keys held by a key service, found by key ID through the trust directory's references
    (``private/<key ID>.kms``, written by ``notar signer add NAME IMAGE --key awskms:///...``).

    Opening a reference costs nothing (the public key is stored in it); the signer is made once per key
    and reused, so a ``notar sign`` asks KMS once per signed role.
    """

    def __init__(
        self, store: FileKeyStore, *, opener: Callable[[KeyReference], Signer] = open_reference
    ) -> None:
        self.store = store
        self._opener = opener
        self._signers: dict[str, tuple[Signer, str]] = {}
        self._lock = threading.Lock()

    def __contains__(self, key_id: object) -> bool:
        if not isinstance(key_id, str):
            return False
        try:
            return os.path.lexists(self.store.reference_path(key_id))
        except KeyNotFoundError:  # not a key ID
            return False

    def get(self, key_id: str) -> tuple[Signer, str]:
        with self._lock:
            held = self._signers.get(key_id)
            if held is None:
                ref = self.store.reference(key_id)
                if ref is None:
                    raise KeyNotFoundError(f"no key reference {key_id[:12]} in {self.store.private_dir}")
                held = self._signers[key_id] = (self._opener(ref), ref.role)
            return held


def trust_dir_keys(store: FileKeyStore) -> KeySource:
    """The trust directory's signing keys: key files first, then the keys its references point to."""
    return ChainedKeys(store, ReferencedKeys(store))


def held_key_ids(
    key_ids: Iterable[str], keys: Mapping[str, PublicKey], source: KeySource
) -> list[tuple[str, str]]:
    """(ID as the metadata lists it, canonical ID to ask *source* for) of every listed key *source* can
    sign with; nothing is decrypted (``source.get(canonical)`` does that)."""
    out = []
    for kid in key_ids:
        pub = keys.get(kid)
        canonical = pub.canonical_key_id if pub is not None else kid
        if canonical in source:
            out.append((kid, canonical))
    return out
