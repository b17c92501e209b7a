"""Where the client finds private keys: the trust directory, memory, or several of them in order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from notar.crypto import PrivateKey
from notar.keystore import KeyNotFoundError

__all__ = ["ChainedKeys", "KeySource", "MemoryKeys"]


@runtime_checkable
class KeySource(Protocol):
    """Private keys by canonical key ID (``FileKeyStore`` is one)."""

    def __contains__(self, key_id: object) -> bool: ...

    def get(self, key_id: str) -> tuple[PrivateKey, str]:
        """The key and its role name; raises ``KeyNotFoundError``."""
        ...


class MemoryKeys:
    """Keys held only in memory (release pipelines: nothing is written to disk)."""

    def __init__(self, keys: Iterable[tuple[PrivateKey, str]] = ()) -> None:
        self._keys = {key.key_id: (key, role) for key, role in keys}

    def add(self, key: PrivateKey, role: str) -> None:
        self._keys[key.key_id] = (key, role)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def get(self, key_id: str) -> tuple[PrivateKey, str]:
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

    def get(self, key_id: str) -> tuple[PrivateKey, str]:
        for source in self.sources:
            if key_id in source:
                return source.get(key_id)
        raise KeyNotFoundError(f"no private key {key_id[:12]}")
