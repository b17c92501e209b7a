"""Image sources and destinations on disk: OCI image layouts and ``docker save`` archives.

Reading (for push), :func:`open_source` accepts

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
types are known, and (for archives) no member name or link escapes the archive; ``docker save`` layers
are also hashed against the config's ``diff_ids`` when the archive is opened. The *content* of the
blobs of an OCI layout is not read up front (that would mean reading every blob twice): it is checked
while it streams, :meth:`ImageSource.open_blob` returns a stream that verifies the digest and size as it
is read, so a corrupted blob fails the push before the registry commits it and before anything is
signed. Errors are :class:`~notar.transfer.errors.LayoutError` subclasses naming the file. Blobs are
never read into memory.

Writing (for pull), :func:`blob_path` and :func:`write_layout_metadata` produce an OCI image layout.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, TypeVar, cast

from notar.registry import (
    MAX_MANIFEST_SIZE,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    Descriptor,
    InvalidDigestError,
    validate_digest,
)
from notar.registry.manifest import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MAX_INDEX_DEPTH,
    is_nondistributable,
)
from notar.transfer.errors import (
    BlobCorruptError,
    BlobMissingError,
    LayoutError,
    SourceTagError,
    UnsafeArchiveError,
)

__all__ = [
    "ANNOTATION_REF_NAME",
    "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER",
    "MEDIA_TYPE_DOCKER_LAYER_GZIP",
    "DockerArchiveSource",
    "ImageContent",
    "ImageSource",
    "ManifestBlob",
    "OCILayoutSource",
    "VerifyingReader",
    "blob_path",
    "collect_image",
    "is_nondistributable",
    "open_source",
    "parse_manifest",
    "write_layout_metadata",
]

ANNOTATION_REF_NAME: Final = "org.opencontainers.image.ref.name"
MEDIA_TYPE_DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYOUT_VERSION: Final = "1.0.0"

_MAX_JSON: Final = MAX_MANIFEST_SIZE  # index.json, manifest.json, manifests
_MAX_CONFIG: Final = 64 * 1024 * 1024
_MAX_LINK_HOPS: Final = 16
_READ_CHUNK: Final = 1024 * 1024
_T = TypeVar("_T")
# What reading a (compressed) tar member or a file can raise: I/O errors, a truncated or corrupted gzip,
# bzip2 or xz stream (EOFError, zlib.error, gzip.BadGzipFile -- an OSError --, lzma.LZMAError), a
# damaged tar header.
_READ_ERRORS: Final = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError)


def _one_line(error: BaseException) -> str:
    """An exception's message on one line (tarfile's can span several)."""
    return " ".join(str(error).split()) or type(error).__name__


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


def _descriptor(item: object, where: str) -> Descriptor:
    if not isinstance(item, dict):
        raise LayoutError(f"{where}: a descriptor must be a JSON object, got {_short(item)}")
    media_type, digest, size = item.get("mediaType"), item.get("digest"), item.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise LayoutError(f"{where}: descriptor without a mediaType: {_short(item)}")
    if not isinstance(digest, str):
        raise LayoutError(f"{where}: descriptor without a digest: {_short(item)}")
    if type(size) is not int or size < 0:
        raise LayoutError(f"{where}: descriptor {digest} has no valid size: {_short(item)}")
    try:
        return Descriptor(media_type, validate_digest(digest), size)
    except InvalidDigestError as e:
        raise LayoutError(f"{where}: {e}") from e


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _json_object(data: bytes, where: str) -> dict[str, object]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise LayoutError(f"{where} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise LayoutError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: object, what: str, where: str) -> list[object]:
    if not isinstance(value, list):
        raise LayoutError(f"{where}: {what!r} must be a JSON array")
    return value


def parse_manifest(descriptor: Descriptor, data: bytes, where: str) -> tuple[str, list[Descriptor]]:
    """The media type of a manifest and what it references (child manifests, or config + layers).

    The descriptor's media type and the manifest's own ``mediaType`` must agree when both are given.
    """
    body = _json_object(data, where)
    if body.get("schemaVersion") != 2:
        raise LayoutError(f"{where}: unsupported schemaVersion {body.get('schemaVersion')!r} (need 2)")
    field_type = body.get("mediaType")
    media_type = descriptor.media_type
    if isinstance(field_type, str) and field_type and field_type != media_type:
        raise LayoutError(f"{where}: the descriptor says {media_type} but the manifest says {field_type}")
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise LayoutError(f"{where}: unsupported manifest media type {media_type!r}")
    if media_type in INDEX_MEDIA_TYPES:
        items = _list(body.get("manifests"), "manifests", where)
        return media_type, [_descriptor(i, where) for i in items]
    layers = _list(body.get("layers", []), "layers", where)
    return media_type, [_descriptor(body.get("config"), where), *(_descriptor(i, where) for i in layers)]


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


# --------------------------------------------------------------------------- verified reading


class VerifyingReader:
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
        except _READ_ERRORS as e:
            raise LayoutError(f"{self._where}: cannot be read: {_one_line(e)}") from e
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

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- file trees (dir or tar)


def _clean(name: str, where: str) -> str:
    """A member name as a normalised relative POSIX path; absolute paths and ``..`` escapes refused."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"{where}: empty or NUL-containing path {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise UnsafeArchiveError(f"{where}: absolute or non-POSIX path {name!r} is not allowed")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        raise UnsafeArchiveError(f"{where}: path {name!r} escapes the archive")
    return normal


class _Tree(ABC):
    """Read access to the files of a directory or a tar archive, by relative POSIX path."""

    name: str

    @abstractmethod
    def size(self, path: str) -> int | None:
        """The size of regular file ``path``, or None if there is none."""

    @abstractmethod
    def open(self, path: str) -> IO[bytes]: ...

    def read(self, path: str, limit: int) -> bytes:
        size = self.size(path)
        if size is None:
            raise LayoutError(f"{self.name}: {path} is missing")
        if size > limit:
            raise LayoutError(f"{self.name}: {path} is {size} bytes, more than the limit of {limit}")
        with self.open(path) as f:
            return f.read(limit + 1)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class _DirTree(_Tree):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._real = root.resolve()
        self.name = str(root)

    def _path(self, path: str) -> Path:
        full = self.root / _clean(path, self.name)
        real = full.resolve()
        if not real.is_relative_to(self._real):
            raise UnsafeArchiveError(f"{self.name}: {path} is a link that leads out of the layout")
        return full

    def size(self, path: str) -> int | None:
        try:
            st = self._path(path).stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise LayoutError(f"{self.name}: cannot read {path}: {e}") from e
        if not stat.S_ISREG(st.st_mode):
            raise LayoutError(f"{self.name}: {path} is not a regular file")
        return st.st_size

    def open(self, path: str) -> IO[bytes]:
        try:
            return self._path(path).open("rb")
        except OSError as e:
            raise LayoutError(f"{self.name}: cannot read {path}: {e}") from e


class _GuardedStream:
    """A tar member's stream whose read errors (truncated or corrupted compression) become
    :class:`LayoutError` naming the archive and member."""

    def __init__(self, raw: IO[bytes], where: str) -> None:
        self._raw = raw
        self._where = where

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._raw.read(-1 if size is None else size)
        except _READ_ERRORS as e:
            raise LayoutError(f"{self._where}: cannot be read (damaged archive?): {_one_line(e)}") from e

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _GuardedStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _TarTree(_Tree):
    """A tar file's members (never extracted). Every member name is checked, links resolved inside."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
        except tarfile.ReadError as e:
            detail = "" if "could not be opened successfully" in str(e) else f": {_one_line(e)}"
            raise LayoutError(
                f"{path}: not an OCI image layout directory, OCI layout tar or docker save archive "
                f"(not a readable tar file{detail})"
            ) from e
        except _READ_ERRORS as e:
            raise LayoutError(f"{path}: not a readable tar archive: {_one_line(e)}") from e
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            for member in self._tar.getmembers():
                name = _clean(member.name, self.name)
                if member.issym():  # checked now, used or not: an archive with escaping links is hostile
                    _clean(
                        posixpath.join(posixpath.dirname(name), member.linkname), f"{self.name}: link {name}"
                    )
                elif member.islnk():
                    _clean(member.linkname, f"{self.name}: link {name}")
                self._members[name] = member
        except _READ_ERRORS as e:
            self._tar.close()
            raise LayoutError(f"{path}: corrupted or truncated tar archive: {_one_line(e)}") from e
        except BaseException:
            self._tar.close()
            raise

    def _resolve(self, path: str) -> tarfile.TarInfo | None:
        name = _clean(path, self.name)
        for _ in range(_MAX_LINK_HOPS):
            member = self._members.get(name)
            if member is None:
                return None
            if member.issym():
                name = _clean(posixpath.join(posixpath.dirname(name), member.linkname), self.name)
            elif member.islnk():
                name = _clean(member.linkname, self.name)
            elif member.isfile():
                return member
            else:
                raise LayoutError(f"{self.name}: {path} is not a regular file")
        raise UnsafeArchiveError(f"{self.name}: {path}: too many links (a loop?)")

    def size(self, path: str) -> int | None:
        member = self._resolve(path)
        return None if member is None else member.size

    def open(self, path: str) -> IO[bytes]:
        member = self._resolve(path)
        try:
            stream = self._tar.extractfile(member) if member is not None else None
        except _READ_ERRORS as e:
            raise LayoutError(f"{self.name}: {path} cannot be read: {_one_line(e)}") from e
        if stream is None:
            raise LayoutError(f"{self.name}: {path} is missing")
        return cast(IO[bytes], _GuardedStream(stream, f"{self.name}: {path}"))

    def has(self, path: str) -> bool:
        return _clean(path, self.name) in self._members

    def close(self) -> None:
        self._tar.close()


# --------------------------------------------------------------------------- sources


class ImageSource(ABC):
    """One image (or multi-platform index) to push, selected from a layout or archive.

    Use it as a context manager (archives keep their tar file open). ``root`` is the top manifest.
    """

    kind: str
    name: str
    root: Descriptor
    ref_name: str | None

    def __init__(self, tree: _Tree) -> None:
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

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


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

    def __init__(self, tree: _Tree, *, tag: str | None, source_tag: str | None) -> None:
        super().__init__(tree)
        self.kind = "oci-archive" if isinstance(tree, _TarTree) else "oci-layout"
        layout = _json_object(tree.read("oci-layout", _MAX_JSON), f"{self.name}/oci-layout")
        version = layout.get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise LayoutError(f"{self.name}/oci-layout: unsupported imageLayoutVersion {version!r}")
        where = f"{self.name}/index.json"
        index = _json_object(tree.read("index.json", _MAX_JSON), where)
        if index.get("schemaVersion") != 2:
            raise LayoutError(f"{where}: unsupported schemaVersion {index.get('schemaVersion')!r} (need 2)")
        entries: list[tuple[list[str], tuple[Descriptor, str | None]]] = []
        for item in _list(index.get("manifests"), "manifests", where):
            descriptor = _descriptor(item, where)
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

    def __init__(self, tree: _TarTree, *, tag: str | None, source_tag: str | None) -> None:
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
                raise LayoutError(f"{where}: every entry must be an object, got {_short(item)}")
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

    def _convert(self, tree: _TarTree, entry: dict[str, object], where: str) -> Descriptor:
        config_name, layer_names = entry.get("Config"), entry.get("Layers")
        if not isinstance(config_name, str):
            raise LayoutError(f"{where}: entry without a Config file name")
        if not isinstance(layer_names, list) or not all(isinstance(n, str) for n in layer_names):
            raise LayoutError(f"{where}: Layers must be a list of file names")
        config = tree.read(config_name, _MAX_CONFIG)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self._members[config_digest] = config_name
        body = _json_object(config, f"{self.name}: {config_name}")
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

    def _hash_member(self, tree: _TarTree, name: str) -> tuple[str, int, str | None]:
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
        tree: _Tree = _DirTree(src)
        if tree.size("index.json") is None:
            raise LayoutError(f"{src}: not an OCI image layout (no index.json)")
        return OCILayoutSource(tree, tag=tag, source_tag=source_tag)
    if not src.exists():
        raise LayoutError(f"{src}: no such file or directory")
    tar_tree = _TarTree(src)
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
