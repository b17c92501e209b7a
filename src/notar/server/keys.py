"""The server-held timestamp and snapshot keys, encrypted at rest, behind a small interface.

:class:`KeyService` is what the rest of the server uses; :class:`DatabaseKeyService` keeps the keys in the
metadata store, each private key encrypted with AES-256-GCM under a key-encryption key derived with
scrypt from the server's passphrase (the GUN, role and key ID are authenticated as associated data, so a
blob cannot be moved to another repository). :class:`HeldKeyService` puts one externally held key (AWS
KMS: ``notar server --timestamp-key awskms:///...``) in front of it for a role, for every repository.
Nothing here is process state that another server process needs: any process can decrypt any key.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from notar.crypto import PrivateKey, PublicKey, Signer
from notar.errors import NotarError
from notar.server.errors import ServerError
from notar.server.storage import MetaStore, StoredKey

__all__ = ["DatabaseKeyService", "HeldKeyService", "KeyService", "KeyServiceError", "Secret"]

log = logging.getLogger("notar.server")

_MAGIC = b"NK1"
_SALT = 16
_NONCE = 12


class KeyServiceError(NotarError):
    """A server key cannot be created, decrypted or used."""


class Secret:
    """A secret value whose repr never shows it (starlette's ``Secret`` idea, for bytes)."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __bool__(self) -> bool:
        return bool(self._value)


class KeyService(Protocol):
    """Creates, rotates and signs with the server-held keys of each repository."""

    algorithm: str

    def get_or_create(self, gun: str, role: str, *, root_key_ids: Sequence[str] | None) -> PublicKey:
        """The key to hand out for *role* (``GET .../<role>.key``).

        With a root (*root_key_ids* = the role's key IDs in it), the first of those the service holds;
        otherwise, or if it holds none of them, a key of its own (created when needed).
        """
        ...

    def rotate(self, gun: str, role: str) -> PublicKey:
        """Always create a new key (``POST .../<role>.key``)."""
        ...

    def signer(self, gun: str, role: str, key_ids: Sequence[str]) -> Signer | None:
        """A signer for the first of *key_ids* the service holds, or None."""
        ...


class _HeldKey:
    """A Signer that presents the stored public key (whose ID is what root lists)."""

    __slots__ = ("_key",)

    def __init__(self, key: PrivateKey) -> None:
        self._key = key

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key

    def sign(self, message: bytes) -> tuple[str, bytes]:
        return self._key.sign(message)


class DatabaseKeyService:
    """Keys in the ``server_keys`` table, encrypted with a passphrase-derived key."""

    def __init__(self, store: MetaStore, passphrase: Secret, *, algorithm: str = "ecdsa") -> None:
        if not passphrase:
            raise KeyServiceError("the server key passphrase must not be empty")
        if algorithm not in ("ecdsa", "ed25519"):
            raise KeyServiceError(f"unsupported server key algorithm {algorithm!r} (ecdsa or ed25519)")
        self.algorithm = algorithm
        self._store = store
        self._passphrase = passphrase
        self._salt = os.urandom(_SALT)
        self._keks: OrderedDict[bytes, AESGCM] = OrderedDict()
        self._cache: OrderedDict[tuple[str, str, str], _HeldKey] = OrderedDict()
        self._lock = threading.Lock()

    # -- encryption at rest ---------------------------------------------------------------------
    def _kek(self, salt: bytes) -> AESGCM:
        with self._lock:
            kek = self._keks.get(salt)
            if kek is not None:
                self._keks.move_to_end(salt)
                return kek
        derived = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(self._passphrase.reveal())
        kek = AESGCM(derived)
        with self._lock:
            self._keks[salt] = kek
            while len(self._keks) > 16:
                self._keks.popitem(last=False)
        return kek

    @staticmethod
    def _aad(gun: str, role: str, key_id: str) -> bytes:
        return f"notar-server-key\0{gun}\0{role}\0{key_id}".encode()

    def _seal(self, key: PrivateKey, gun: str, role: str) -> bytes:
        der = key.crypto.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        nonce = os.urandom(_NONCE)
        sealed = self._kek(self._salt).encrypt(nonce, der, self._aad(gun, role, key.key_id))
        return _MAGIC + self._salt + nonce + sealed

    def _open(self, row: StoredKey) -> PrivateKey:
        blob = row.private
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _SALT + _NONCE + 16:
            raise KeyServiceError(f"server key {row.key_id[:12]} of {row.gun} has an unknown format")
        salt = blob[len(_MAGIC) : len(_MAGIC) + _SALT]
        nonce = blob[len(_MAGIC) + _SALT : len(_MAGIC) + _SALT + _NONCE]
        try:
            der = self._kek(salt).decrypt(
                nonce, blob[len(_MAGIC) + _SALT + _NONCE :], self._aad(row.gun, row.role, row.key_id)
            )
        except InvalidTag as e:
            raise KeyServiceError(
                f"cannot decrypt server key {row.key_id[:12]} of {row.gun}: wrong server key passphrase?"
            ) from e
        loaded = serialization.load_der_private_key(der, None)
        key = PrivateKey(loaded)  # type: ignore[arg-type]
        if key.key_id != row.key_id:
            raise KeyServiceError(f"server key {row.key_id[:12]} of {row.gun} does not match its ID")
        return key

    # -- the service ------------------------------------------------------------------------------
    def _create(self, gun: str, role: str) -> PublicKey:
        key = PrivateKey.generate(self.algorithm)
        row = StoredKey(
            gun=gun,
            role=role,
            key_id=key.key_id,
            algorithm=key.keytype,
            public=key.public_key.public,
            private=self._seal(key, gun, role),
            created_at=datetime.now(UTC),
        )
        self._store.add_key(row)
        with self._lock:
            self._cache[(gun, role, key.key_id)] = _HeldKey(key)
        return key.public_key

    def get_or_create(self, gun: str, role: str, *, root_key_ids: Sequence[str] | None) -> PublicKey:
        rows = self._store.get_keys(gun, role)
        if root_key_ids:
            held = {r.key_id: r for r in rows}
            for kid in root_key_ids:
                if kid in held:
                    return PublicKey(held[kid].algorithm, held[kid].public)
        elif rows:
            # No root yet: hand out the newest key instead of minting one per request (notary mints a
            # new key on every call, which lets anonymous requests grow the key table without bound).
            return PublicKey(rows[0].algorithm, rows[0].public)
        return self._create(gun, role)

    def rotate(self, gun: str, role: str) -> PublicKey:
        return self._create(gun, role)

    def signer(self, gun: str, role: str, key_ids: Sequence[str]) -> Signer | None:
        with self._lock:
            for kid in key_ids:
                cached = self._cache.get((gun, role, kid))
                if cached is not None:
                    self._cache.move_to_end((gun, role, kid))
                    return cached
        rows = {r.key_id: r for r in self._store.get_keys(gun, role)}
        for kid in key_ids:
            row = rows.get(kid)
            if row is None:
                continue
            held = _HeldKey(self._open(row))
            with self._lock:
                self._cache[(gun, role, kid)] = held
                while len(self._cache) > 4096:
                    self._cache.popitem(last=False)
            return held
        return None


class _ExternalSigner:
    """A held key's signer as the server uses it: a failure of the key service (KMS denied, throttled,
    unreachable) is logged in one line and answered ``503 UNAVAILABLE``; nothing is stored."""

    __slots__ = ("_gun", "_role", "_signer")

    def __init__(self, signer: Signer, gun: str, role: str) -> None:
        self._signer, self._gun, self._role = signer, gun, role

    @property
    def public_key(self) -> PublicKey:
        return self._signer.public_key

    def sign(self, message: bytes) -> tuple[str, bytes]:
        try:
            return self._signer.sign(message)
        except NotarError as e:
            log.error(
                "cannot sign the %s of %s with the held %s key: %s", self._role, self._gun, self._role, e
            )
            raise ServerError("UNAVAILABLE") from e


class HeldKeyService:
    """One externally held key per role (*held*: role -> signer, e.g. a KMS key) for every repository, in
    front of *inner* (the database keys), which keeps serving every other role.

    For a held role: a new repository gets the held key; a repository whose root lists the held key is
    signed with it; a repository whose root still lists a key *inner* holds (made before the held key was
    configured) keeps it until that key is rotated, and rotating (``POST .../<role>.key``) hands out the
    held key, which moves the repository onto it. Nothing of the held key is stored in the database.
    """

    def __init__(self, inner: KeyService, held: Mapping[str, Signer]) -> None:
        self._inner = inner
        self._held = dict(held)
        self.algorithm = inner.algorithm

    def held_key(self, role: str) -> PublicKey | None:
        """The public key held for *role*, or None."""
        signer = self._held.get(role)
        return None if signer is None else signer.public_key

    def get_or_create(self, gun: str, role: str, *, root_key_ids: Sequence[str] | None) -> PublicKey:
        signer = self._held.get(role)
        if signer is None:
            return self._inner.get_or_create(gun, role, root_key_ids=root_key_ids)
        held = signer.public_key
        if root_key_ids and held.key_id not in root_key_ids and self._inner.signer(gun, role, root_key_ids):
            return self._inner.get_or_create(gun, role, root_key_ids=root_key_ids)
        return held

    def rotate(self, gun: str, role: str) -> PublicKey:
        signer = self._held.get(role)
        if signer is None:
            return self._inner.rotate(gun, role)
        return signer.public_key

    def signer(self, gun: str, role: str, key_ids: Sequence[str]) -> Signer | None:
        held = self._held.get(role)
        if held is not None and held.public_key.key_id in key_ids:
            return _ExternalSigner(held, gun, role)
        return self._inner.signer(gun, role, key_ids)
