"""Images on disk to push: OCI image layouts and ``docker save`` archives.

:func:`open_source` accepts

* an **OCI image layout directory** (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``) as buildah,
  skopeo (``oci:DIR``) and ``docker buildx --output type=oci,tar=false`` write it;
* the same layout **as a tar file** (``docker buildx --output type=oci,dest=x.tar``, ``skopeo oci-archive:``);
* a **``docker save`` archive** (``manifest.json`` + config JSON + layer tars), which is converted to a
  Docker schema 2 manifest. Layers are pushed *as they are in the archive*: ``docker save`` stores
  uncompressed tars, which are pushed with media type ``application/vnd.docker.image.rootfs.diff.tar``
  (their digest then equals the config's ``diff_id``, which is checked); a layer that is already gzip'ed
  is pushed as ``...diff.tar.gzip`` (the digest of its decompressed content must then equal the
  ``diff_id``). Not recompressing keeps the push byte-for-byte reproducible (no
  dependence on a gzip implementation or level) and streaming; the price is more bytes on the wire.
  Every registry and container runtime we know accepts uncompressed layers.

Before anything is uploaded, :func:`collect_image` checks the structure: every manifest is read and
verified against its digest and size, every blob is present with the size its descriptor gives, media
types are known, and (for archives) no member name or link escapes the archive (:mod:`notar.transfer.trees`);
``docker save`` layers are also hashed against the config's ``diff_ids`` when the archive is opened. The
*content* of the blobs of an OCI layout is not read up front (that would mean reading every blob twice): it
is checked while it streams, :meth:`ImageSource.open_blob` returns a stream that verifies the digest and
size as it is read, so a corrupted blob fails the push before the registry commits it and before anything
is signed. Errors are :class:`~notar.transfer.errors.LayoutError` subclasses naming the file. Blobs are
never read into memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zlib
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final, TypeVar

from notar.registry import MAX_MANIFEST_SIZE, MEDIA_TYPE_DOCKER_MANIFEST, Descriptor
from notar.registry.manifest import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MAX_INDEX_DEPTH,
    is_nondistributable,
)
from notar.transfer.errors import BlobCorruptError, BlobMissingError, LayoutError, SourceTagError
from notar.transfer.layout import (
    ANNOTATION_REF_NAME,
    MEDIA_TYPE_DOCKER_CONFIG,
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    ImageContent,
    ManifestBlob,
    VerifyingReader,
    parse_array,
    parse_descriptor,
    parse_manifest,
    parse_object,
    shorten,
)
from notar.transfer.trees import Closing, DirTree, TarTree, Tree

__all__ = [
    "DockerArchiveSource",
    "ImageSource",
    "OCILayoutSource",
    "collect_image",
    "open_source",
]

_MAX_JSON: Final = MAX_MANIFEST_SIZE  # index.json, manifest.json, manifests
_MAX_CONFIG: Final = 64 * 1024 * 1024
_READ_CHUNK: Final = 1024 * 1024
_T = TypeVar("_T")


class ImageSource(Closing):
    """One image (or multi-platform index) to push, selected from a layout or archive.

    Use it as a context manager (archives keep their tar file open). ``root`` is the top manifest.
    """

    kind: str
    name: str
    root: Descriptor
    ref_name: str | None

    def __init__(self, tree: Tree) -> None:
        self._tree = tree
        self.name = tree.name

    @abstractmethod
    def blob_size(self, descriptor: Descriptor) -> int | None:
        """The size of the stored blob (None if absent)."""

    @abstractmethod
    def _open_raw(self, descriptor: Descriptor) -> IO[bytes]: ...

    def open_blob(
        self, descriptor: Descriptor, on_read: Callable[[int], None] | None = None
    ) -> VerifyingReader:
        """A stream of the blob that raises :class:`BlobCorruptError` if it does not match ``descriptor``."""
        if self.blob_size(descriptor) is None:
            raise BlobMissingError(f"{self.name}: blob {descriptor.digest} is missing")
        where = f"{self.name}: blob {descriptor.digest}"
        return VerifyingReader(self._open_raw(descriptor), descriptor, where, on_read)

    def read_manifest(self, descriptor: Descriptor) -> bytes:
        """A manifest's bytes, checked against the descriptor's size and digest."""
        if descriptor.size > _MAX_JSON:
            raise LayoutError(f"{self.name}: manifest {descriptor.digest} is larger than {_MAX_JSON} bytes")
        present = self.blob_size(descriptor)
        if present is None:
            raise BlobMissingError(f"{self.name}: manifest {descriptor.digest} is missing")
        with self.open_blob(descriptor) as stream:
            return stream.read(descriptor.size)

    def close(self) -> None:
        self._tree.close()


def _blob_name(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def _choose(entries: list[tuple[list[str], _T]], tag: str | None, source_tag: str | None, where: str) -> _T:
    """Pick the entry named ``source_tag`` (else ``tag``); a lone entry is taken unless a
    ``source_tag`` was asked for explicitly."""
    if not entries:
        raise LayoutError(f"{where}: contains no image")
    wanted = source_tag or tag
    if wanted is not None:
        exact = [e for names, e in entries if wanted in names]
        if not exact:  # full references such as "localhost/app:1.0" or "app:1.0"
            exact = [e for names, e in entries if any(_tag_of(n) == wanted for n in names)]
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise SourceTagError(f"{where}: {len(exact)} images are named {wanted!r}; the name is ambiguous")
    if len(entries) == 1 and source_tag is None:
        return entries[0][1]
    names = sorted({n for ns, _ in entries for n in ns})
    listed = ", ".join(names) if names else "none"
    if wanted is None:
        raise SourceTagError(
            f"{where}: {len(entries)} images; choose one with --source-tag (names: {listed})"
        )
    raise SourceTagError(
        f"{where}: no image named {wanted!r} among {len(entries)} (names: {listed}); "
        "choose one with --source-tag"
    )


def _tag_of(name: str) -> str | None:
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


class OCILayoutSource(ImageSource):
    """An OCI image layout, in a directory or a tar file."""

    def __init__(self, tree: Tree, *, tag: str | None, source_tag: str | None) -> None:
        super().__init__(tree)
        self.kind = "oci-archive" if isinstance(tree, TarTree) else "oci-layout"
        layout = parse_object(tree.read("oci-layout", _MAX_JSON), f"{self.name}/oci-layout")
        version = layout.get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise LayoutError(f"{self.name}/oci-layout: unsupported imageLayoutVersion {version!r}")
        where = f"{self.name}/index.json"
        index = parse_object(tree.read("index.json", _MAX_JSON), where)
        if index.get("schemaVersion") != 2:
            raise LayoutError(f"{where}: unsupported schemaVersion {index.get('schemaVersion')!r} (need 2)")
        entries: list[tuple[list[str], tuple[Descriptor, str | None]]] = []
        for item in parse_array(index.get("manifests"), "manifests", where):
            descriptor = parse_descriptor(item, where)
            annotations = item.get("annotations") if isinstance(item, dict) else None
            if annotations is not None and not isinstance(annotations, dict):
                raise LayoutError(f"{where}: 'annotations' of {descriptor.digest} must be an object")
            ref_name = (annotations or {}).get(ANNOTATION_REF_NAME)
            if ref_name is not None and not isinstance(ref_name, str):
                raise LayoutError(f"{where}: {ANNOTATION_REF_NAME} of {descriptor.digest} must be a string")
            if descriptor.media_type not in MANIFEST_MEDIA_TYPES:
                continue  # e.g. an artifact; only images are candidates
            entries.append(([ref_name] if ref_name else [], (descriptor, ref_name)))
        self.root, self.ref_name = _choose(entries, tag, source_tag, where)

    def blob_size(self, descriptor: Descriptor) -> int | None:
        return self._tree.size(_blob_name(descriptor.digest))

    def _open_raw(self, descriptor: Descriptor) -> IO[bytes]:
        return self._tree.open(_blob_name(descriptor.digest))


class DockerArchiveSource(ImageSource):
    """A ``docker save`` archive, presented as a Docker schema 2 image (see the module docstring)."""

    kind = "docker-archive"

    def __init__(self, tree: TarTree, *, tag: str | None, source_tag: str | None) -> None:
        super().__init__(tree)
        where = f"{self.name}: manifest.json"
        try:
            value = json.loads(tree.read("manifest.json", _MAX_JSON))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise LayoutError(f"{where} is not valid JSON: {e}") from e
        if not isinstance(value, list):
            raise LayoutError(f"{where} must be a JSON array")
        entries: list[tuple[list[str], dict[str, object]]] = []
        for item in value:
            if not isinstance(item, dict):
                raise LayoutError(f"{where}: every entry must be an object, got {shorten(item)}")
            tags = item.get("RepoTags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise LayoutError(f"{where}: RepoTags must be a list of strings")
            entries.append((tags, item))
        entry = _choose(entries, tag, source_tag, where)
        tags = entry.get("RepoTags") or []
        self.ref_name = tags[0] if isinstance(tags, list) and tags else None
        self._members: dict[str, str] = {}  # digest -> archive member
        self._generated: dict[str, bytes] = {}  # digest -> bytes made here (the manifest)
        self.root = self._convert(tree, entry, where)

    def _convert(self, tree: TarTree, entry: dict[str, object], where: str) -> Descriptor:
        config_name, layer_names = entry.get("Config"), entry.get("Layers")
        if not isinstance(config_name, str):
            raise LayoutError(f"{where}: entry without a Config file name")
        if not isinstance(layer_names, list) or not all(isinstance(n, str) for n in layer_names):
            raise LayoutError(f"{where}: Layers must be a list of file names")
        config = tree.read(config_name, _MAX_CONFIG)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self._members[config_digest] = config_name
        body = parse_object(config, f"{self.name}: {config_name}")
        rootfs = body.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
            count = len(diff_ids) if isinstance(diff_ids, list) else "no"
            raise LayoutError(
                f"{self.name}: {config_name} lists {count} diff_ids for {len(layer_names)} layers"
            )
        layers = []
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            digest, size, unzipped = self._hash_member(tree, name)
            gzipped = digest != diff_id and unzipped is not None
            if gzipped and unzipped != diff_id:  # a gzip'ed layer: its diff_id is the uncompressed tar's
                raise BlobCorruptError(
                    f"{self.name}: layer {name} decompresses to {unzipped} but the config says {diff_id}"
                )
            if not gzipped and digest != diff_id:
                raise BlobCorruptError(
                    f"{self.name}: layer {name} hashes to {digest} but the config says {diff_id}"
                )
            self._members.setdefault(digest, name)
            media_type = MEDIA_TYPE_DOCKER_LAYER_GZIP if gzipped else MEDIA_TYPE_DOCKER_LAYER
            layers.append({"mediaType": media_type, "size": size, "digest": digest})
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_DOCKER_MANIFEST,
            "config": {"mediaType": MEDIA_TYPE_DOCKER_CONFIG, "size": len(config), "digest": config_digest},
            "layers": layers,
        }
        data = json.dumps(manifest, indent=3).encode()  # docker's own indentation
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._generated[digest] = data
        return Descriptor(MEDIA_TYPE_DOCKER_MANIFEST, digest, len(data))

    def _hash_member(self, tree: TarTree, name: str) -> tuple[str, int, str | None]:
        """The digest and size of layer ``name`` and, if it is gzip'ed, the digest of its
        decompressed content (None if it does not start like gzip or does not decompress)."""
        size = tree.size(name)
        if size is None:
            raise BlobMissingError(f"{self.name}: layer {name} is missing")
        hasher = hashlib.sha256()
        count = 0
        unzip: _GunzipHasher | None = None
        with tree.open(name) as f:
            while chunk := f.read(_READ_CHUNK):
                if count == 0 and chunk[:2] == b"\x1f\x8b":
                    unzip = _GunzipHasher()
                hasher.update(chunk)
                count += len(chunk)
                if unzip is not None:
                    unzip.update(chunk)
        if count != size:
            raise LayoutError(f"{self.name}: layer {name} is truncated ({count} of {size} bytes)")
        return "sha256:" + hasher.hexdigest(), size, None if unzip is None else unzip.digest()

    def blob_size(self, descriptor: Descriptor) -> int | None:
        if descriptor.digest in self._generated:
            return len(self._generated[descriptor.digest])
        member = self._members.get(descriptor.digest)
        return None if member is None else self._tree.size(member)

    def _open_raw(self, descriptor: Descriptor) -> IO[bytes]:
        if descriptor.digest in self._generated:
            return io.BytesIO(self._generated[descriptor.digest])
        return self._tree.open(self._members[descriptor.digest])


class _GunzipHasher:
    """The sha256 of the decompressed content of a gzip stream fed in pieces (several members and
    zero padding allowed, as gzip(1) does); :meth:`digest` is None if the stream is not valid gzip."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._unzip: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._failed = False

    def update(self, data: bytes) -> None:
        while data and not self._failed:
            if self._unzip is None:  # between members: zero padding, or the next member
                data = data.lstrip(b"\x00")
                if not data:
                    return
                self._unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                while True:  # bounded output per call: a small gzip can inflate enormously
                    out = self._unzip.decompress(data, _READ_CHUNK)
                    self._hash.update(out)
                    if self._unzip.eof:
                        data = self._unzip.unused_data
                        self._unzip = None
                        break
                    data = self._unzip.unconsumed_tail
                    if not data and not out:
                        return  # everything consumed: wait for more input
            except zlib.error:
                self._failed = True

    def digest(self) -> str | None:
        if self._failed or (self._unzip is not None and not self._unzip.eof):
            return None  # corrupted, or truncated
        return "sha256:" + self._hash.hexdigest()


def open_source(
    path: str | os.PathLike[str], *, tag: str | None = None, source_tag: str | None = None
) -> ImageSource:
    """Open ``path`` (OCI layout directory, OCI layout tar, or ``docker save`` tar) and select one image.

    ``source_tag`` names the image in the source (``org.opencontainers.image.ref.name`` in index.json,
    ``RepoTags`` in a docker archive); without it, ``tag`` (the destination tag) is tried, and a source
    holding a single image needs no name at all.
    """
    src = Path(path)
    if src.is_dir():
        tree: Tree = DirTree(src)
        if tree.size("index.json") is None:
            raise LayoutError(f"{src}: not an OCI image layout (no index.json)")
        return OCILayoutSource(tree, tag=tag, source_tag=source_tag)
    if not src.exists():
        raise LayoutError(f"{src}: no such file or directory")
    tar_tree = TarTree(src)
    try:
        if tar_tree.has("manifest.json"):
            return DockerArchiveSource(tar_tree, tag=tag, source_tag=source_tag)
        if tar_tree.has("oci-layout"):
            return OCILayoutSource(tar_tree, tag=tag, source_tag=source_tag)
        raise LayoutError(
            f"{src}: neither a docker save archive (manifest.json) nor an OCI layout (oci-layout)"
        )
    except BaseException:
        tar_tree.close()
        raise


def collect_image(source: ImageSource) -> ImageContent:
    """Walk ``source.root``: read and verify every manifest, check that every blob is present."""
    manifests: list[ManifestBlob] = []
    blobs: dict[str, Descriptor] = {}
    configs: set[str] = set()
    seen: set[str] = set()

    def walk(descriptor: Descriptor, depth: int) -> ManifestBlob:
        if depth > MAX_INDEX_DEPTH:
            raise LayoutError(f"{source.name}: indexes nested more than {MAX_INDEX_DEPTH} deep")
        data = source.read_manifest(descriptor)
        where = f"{source.name}: manifest {descriptor.digest}"
        media_type, refs = parse_manifest(descriptor, data, where)
        if media_type not in INDEX_MEDIA_TYPES and refs:
            configs.add(refs[0].digest)
        for ref in refs:
            if media_type in INDEX_MEDIA_TYPES:
                if ref.media_type not in MANIFEST_MEDIA_TYPES:
                    raise LayoutError(f"{where}: entry {ref.digest} has unsupported type {ref.media_type!r}")
                if ref.digest not in seen:
                    seen.add(ref.digest)
                    walk(ref, depth + 1)
            elif ref.digest not in blobs:
                present = source.blob_size(ref)
                if present is None and is_nondistributable(ref.media_type):  # fetched from their URLs
                    continue
                if present is None:
                    raise BlobMissingError(f"{source.name}: blob {ref.digest} ({ref.media_type}) is missing")
                if present != ref.size:
                    raise BlobCorruptError(
                        f"{source.name}: blob {ref.digest} has {present} bytes, its descriptor says {ref.size}"
                    )
                blobs[ref.digest] = ref
        blob = ManifestBlob(descriptor, data)
        manifests.append(blob)
        return blob

    root = walk(source.root, 0)
    return ImageContent(
        root=root, manifests=tuple(manifests), blobs=tuple(blobs.values()), configs=frozenset(configs)
    )
