"""Where the updater reads metadata from: a small protocol and the in-memory implementation.

:class:`MetadataSource` is what :class:`notar.client.Updater` needs: one file by role (current, by
checksum, or by version), capped at *max_bytes*, with the client's errors (``RepositoryNotFoundError``
for a missing root, :class:`MetadataNotFoundError` for any other missing file, ``TrustServerError`` for
an answer over the cap). Three implementations share it:

* :class:`notar.client.TrustServer` -- a trust server over HTTP (notary-server or notar server);
* :class:`MemorySource` -- files held in memory (tests, tools that already hold the bytes);
* ``notar.web``'s source over the server's own ``TrustService`` (in process, for the UI).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from notar.client.errors import RepositoryNotFoundError, TrustServerError

__all__ = ["MemorySource", "MetadataNotFoundError", "MetadataSource", "metadata_name"]


class MetadataNotFoundError(TrustServerError):
    """404 for a metadata file."""


class MetadataSource(Protocol):
    """One repository's metadata files, as a Notary v1 server serves them."""

    url: str  # names the source in messages

    def get(
        self, gun: str, role: str, *, max_bytes: int, checksum: str | None = None, version: int | None = None
    ) -> bytes:
        """A metadata file of at most *max_bytes* (current, by sha256 *checksum*, or by *version*)."""
        ...


def metadata_name(role: str, *, checksum: str | None = None, version: int | None = None) -> str:
    """The file name a Notary v1 server serves: ``role.json``, ``role.<sha256>.json``, ``N.role.json``."""
    if checksum is not None:
        return f"{role}.{checksum}.json"
    if version is not None:
        return f"{version}.{role}.json"
    return f"{role}.json"


def not_found(gun: str, role: str, name: str, where: str, *, current: bool) -> TrustServerError:
    """The client's error for a missing file: no current root means no repository."""
    if role == "root" and current:
        return RepositoryNotFoundError(gun, where)
    return MetadataNotFoundError(f"{name} of {gun} not found on {where}")


def too_large(name: str, max_bytes: int) -> TrustServerError:
    return TrustServerError(f"trust server returned a bad response: {name} is larger than {max_bytes} bytes")


class MemorySource:
    """Metadata files in memory, served like a Notary v1 server (current, by checksum, by version)."""

    def __init__(self, url: str = "memory:") -> None:
        self.url = url
        self._files: dict[tuple[str, str], bytes] = {}  # (gun, served name) -> bytes

    def put(self, gun: str, role: str, data: bytes, *, version: int | None = None) -> None:
        """Publish *data* as the current *role* of *gun* (and by checksum, and by *version* if given)."""
        self._files[(gun, metadata_name(role))] = data
        self._files[(gun, metadata_name(role, checksum=hashlib.sha256(data).hexdigest()))] = data
        if version is not None:
            self._files[(gun, metadata_name(role, version=version))] = data

    def get(
        self, gun: str, role: str, *, max_bytes: int, checksum: str | None = None, version: int | None = None
    ) -> bytes:
        name = metadata_name(role, checksum=checksum, version=version)
        data = self._files.get((gun, name))
        if data is None:
            raise not_found(gun, role, name, self.url, current=checksum is None and version is None)
        if len(data) > max_bytes:
            raise too_large(name, max_bytes)
        return data
