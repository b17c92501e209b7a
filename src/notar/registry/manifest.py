"""Manifest media types and the small value types the registry client returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from notar.registry.digest import validate_digest
from notar.registry.errors import RegistryProtocolError

__all__ = [
    "ACCEPTED_MANIFEST_TYPES",
    "INDEX_MEDIA_TYPES",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_DOCKER_SCHEMA1",
    "MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_MANIFEST",
    "SCHEMA1_MEDIA_TYPES",
    "Descriptor",
    "Manifest",
]

MEDIA_TYPE_DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# The types notar asks for, in order of preference (sent as the Accept header).
ACCEPTED_MANIFEST_TYPES: Final = (
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST,
)
INDEX_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST})
SCHEMA1_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_DOCKER_SCHEMA1, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED})


@dataclass(frozen=True)
class Descriptor:
    """Media type, digest and size of a piece of content (what a HEAD request tells)."""

    media_type: str
    digest: str
    size: int

    def __post_init__(self) -> None:
        validate_digest(self.digest)
        if self.size < 0:
            raise ValueError(f"negative size {self.size}")


@dataclass(frozen=True)
class Manifest:
    """A manifest as fetched: its exact bytes, their verified digest and size, and its media type.

    ``digest`` is always the digest of ``data`` (the client checks it); ``size == len(data)``.
    """

    digest: str
    size: int
    media_type: str
    data: bytes = field(repr=False)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)

    @property
    def is_index(self) -> bool:
        """True for an OCI image index or a Docker manifest list (a multi-platform image)."""
        return self.media_type in INDEX_MEDIA_TYPES

    def json(self) -> dict[str, object]:
        """The manifest parsed as a JSON object."""
        try:
            value = json.loads(self.data)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise RegistryProtocolError(f"manifest {self.digest} is not valid JSON: {e}") from e
        if not isinstance(value, dict):
            raise RegistryProtocolError(f"manifest {self.digest} is not a JSON object")
        return value

    def references(self) -> list[Descriptor]:
        """The content this manifest points to: config and layers, or the manifests of an index."""
        body = self.json()
        items: list[object]
        if self.is_index:
            if "manifests" not in body:
                raise RegistryProtocolError(f"index {self.digest} has no manifests list")
            items = _as_list(body.get("manifests"))
        else:
            if not isinstance(body.get("config"), dict):
                raise RegistryProtocolError(f"manifest {self.digest} has no config descriptor")
            items = [body.get("config"), *_as_list(body.get("layers"))]
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise RegistryProtocolError(f"manifest {self.digest}: malformed descriptor {item!r}")
            media_type, digest, size = item.get("mediaType", ""), item.get("digest"), item.get("size")
            if not isinstance(media_type, str) or not isinstance(digest, str) or type(size) is not int:
                raise RegistryProtocolError(f"manifest {self.digest}: malformed descriptor {item!r}")
            try:
                out.append(Descriptor(media_type, digest, size))
            except ValueError as e:
                raise RegistryProtocolError(f"manifest {self.digest}: {e}") from e
        return out


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegistryProtocolError(f"expected a JSON array, got {type(value).__name__}")
    return value
