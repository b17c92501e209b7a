"""The OCI image layout: an image's content as notar moves it, its manifests checked, and a layout written.

* :class:`ImageContent` / :class:`ManifestBlob` -- what one push uploads: every manifest (children first,
  the top one last) and the blobs they reference; :func:`parse_manifest` reads a manifest's media type and
  references, refusing what is not a schema 2 / OCI manifest or index, :class:`VerifyingReader` checks a
  blob's digest and size while it streams. The images on disk that push reads are in
  :mod:`notar.transfer.sources`.
* Writing (for pull): :func:`blob_path` and :func:`write_layout_metadata` produce an OCI image layout.

Errors are :class:`~notar.transfer.errors.LayoutError` subclasses naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from notar.registry import Descriptor, InvalidDigestError, validate_digest
from notar.registry.manifest import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MEDIA_TYPE_OCI_INDEX
from notar.transfer.errors import BlobCorruptError, LayoutError
from notar.transfer.trees import READ_ERRORS, Closing, one_line

__all__ = [
    "ANNOTATION_REF_NAME",
    "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER",
    "MEDIA_TYPE_DOCKER_LAYER_GZIP",
    "OCI_LAYOUT_VERSION",
    "ImageContent",
    "ManifestBlob",
    "VerifyingReader",
    "blob_path",
    "parse_manifest",
    "write_layout_metadata",
]

ANNOTATION_REF_NAME: Final = "org.opencontainers.image.ref.name"
MEDIA_TYPE_DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYOUT_VERSION: Final = "1.0.0"


# --------------------------------------------------------------------------- content model


@dataclass(frozen=True)
class ManifestBlob:
    """A manifest (or index) with its descriptor; ``data`` hashes to ``descriptor.digest``."""

    descriptor: Descriptor
    data: bytes


@dataclass(frozen=True)
class ImageContent:
    """Everything one push uploads: ``manifests`` children first and ``root`` last, and the ``blobs``
    (configs and layers, each once) they reference."""

    root: ManifestBlob
    manifests: tuple[ManifestBlob, ...]
    blobs: tuple[Descriptor, ...]
    configs: frozenset[str] = frozenset()
    """The digests among ``blobs`` that some manifest uses as its config (the others are layers)."""

    @property
    def is_index(self) -> bool:
        return self.root.descriptor.media_type in INDEX_MEDIA_TYPES


# The readers of layout JSON (here and in notar.transfer.sources): strict, each refusal a LayoutError
# naming *where*.


def parse_descriptor(item: object, where: str) -> Descriptor:
    """A descriptor with a media type, a valid digest and a size."""
    if not isinstance(item, dict):
        raise LayoutError(f"{where}: a descriptor must be a JSON object, got {shorten(item)}")
    media_type, digest, size = item.get("mediaType"), item.get("digest"), item.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise LayoutError(f"{where}: descriptor without a mediaType: {shorten(item)}")
    if not isinstance(digest, str):
        raise LayoutError(f"{where}: descriptor without a digest: {shorten(item)}")
    if type(size) is not int or size < 0:
        raise LayoutError(f"{where}: descriptor {digest} has no valid size: {shorten(item)}")
    try:
        return Descriptor(media_type, validate_digest(digest), size)
    except InvalidDigestError as e:
        raise LayoutError(f"{where}: {e}") from e


def shorten(value: object) -> str:
    """*value* as JSON for a message, cut to 120 characters."""
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def parse_object(data: bytes, where: str) -> dict[str, object]:
    """*data* as a JSON object."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise LayoutError(f"{where} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise LayoutError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def parse_array(value: object, what: str, where: str) -> list[object]:
    """*value*, the member *what* of a document, which must be a JSON array."""
    if not isinstance(value, list):
        raise LayoutError(f"{where}: {what!r} must be a JSON array")
    return value


def parse_manifest(descriptor: Descriptor, data: bytes, where: str) -> tuple[str, list[Descriptor]]:
    """The media type of a manifest and what it references (child manifests, or config + layers).

    The descriptor's media type and the manifest's own ``mediaType`` must agree when both are given.
    """
    body = parse_object(data, where)
    if body.get("schemaVersion") != 2:
        raise LayoutError(f"{where}: unsupported schemaVersion {body.get('schemaVersion')!r} (need 2)")
    field_type = body.get("mediaType")
    media_type = descriptor.media_type
    if isinstance(field_type, str) and field_type and field_type != media_type:
        raise LayoutError(f"{where}: the descriptor says {media_type} but the manifest says {field_type}")
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise LayoutError(f"{where}: unsupported manifest media type {media_type!r}")
    if media_type in INDEX_MEDIA_TYPES:
        items = parse_array(body.get("manifests"), "manifests", where)
        return media_type, [parse_descriptor(i, where) for i in items]
    layers = parse_array(body.get("layers", []), "layers", where)
    return media_type, [
        parse_descriptor(body.get("config"), where),
        *(parse_descriptor(i, where) for i in layers),
    ]


# --------------------------------------------------------------------------- verified reading


class VerifyingReader(Closing):
    """A read-only stream over ``raw`` that raises :class:`BlobCorruptError` unless exactly
    ``descriptor.size`` bytes hashing to ``descriptor.digest`` come out. ``on_read`` sees each chunk size."""

    def __init__(
        self,
        raw: IO[bytes],
        descriptor: Descriptor,
        where: str,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self._raw = raw
        self._descriptor = descriptor
        self._where = where
        self._hash = hashlib.new(descriptor.digest.partition(":")[0])
        self._count = 0
        self._on_read = on_read
        self._checked = False

    def read(self, n: int = -1) -> bytes:
        want = self._descriptor.size - self._count if n is None or n < 0 else n
        try:
            chunk = self._raw.read(min(want, self._descriptor.size - self._count + 1))
        except READ_ERRORS as e:
            raise LayoutError(f"{self._where}: cannot be read: {one_line(e)}") from e
        self._count += len(chunk)
        self._hash.update(chunk)
        if self._count > self._descriptor.size:
            raise BlobCorruptError(f"{self._where}: more than the {self._descriptor.size} bytes expected")
        if (not chunk and want > 0) or self._count == self._descriptor.size:
            self._check()
        if self._on_read is not None and chunk:
            self._on_read(len(chunk))
        return chunk

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._count != self._descriptor.size:
            raise BlobCorruptError(
                f"{self._where}: truncated, {self._count} of {self._descriptor.size} bytes"
            )
        actual = f"{self._descriptor.digest.partition(':')[0]}:{self._hash.hexdigest()}"
        if actual != self._descriptor.digest:
            raise BlobCorruptError(f"{self._where}: the content hashes to {actual}")

    def close(self) -> None:
        self._raw.close()


# --------------------------------------------------------------------------- writing a layout


def blob_path(layout: Path, digest: str) -> Path:
    """Where blob ``digest`` lives in the OCI layout ``layout`` (the digest is validated)."""
    algorithm, _, encoded = validate_digest(digest).partition(":")
    return layout / "blobs" / algorithm / encoded


def write_layout_metadata(layout: Path, root: Descriptor, ref_name: str) -> None:
    """Write ``oci-layout`` and an ``index.json`` naming ``root`` ``ref_name`` (blobs already in place)."""
    entry = {
        "mediaType": root.media_type,
        "digest": root.digest,
        "size": root.size,
        "annotations": {ANNOTATION_REF_NAME: ref_name},
    }
    index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [entry]}
    _write_file(layout / "oci-layout", json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode())
    _write_file(layout / "index.json", json.dumps(index, indent=2).encode() + b"\n")


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
