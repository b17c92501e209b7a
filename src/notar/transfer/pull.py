"""Pull a signed image into an OCI image layout: trust first, then content by digest, all or nothing.

The tag is resolved only through verified trust data (docker's rule: ``targets/releases``, then
``targets``); the registry is asked for that digest, never for the tag. Every manifest and blob is
checked against its digest and size as it arrives. Everything is written into a temporary directory
beside the destination and renamed into place at the end, so a failed pull leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from notar.client import NotSignedError, Repository, RepositoryNotFoundError, TargetMatch, TrustedRepo
from notar.registry import (
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    Manifest,
    Reference,
    RegistryClient,
)
from notar.transfer.errors import DestinationError, SourceError, TransferError
from notar.transfer.layout import blob_path, write_layout_metadata
from notar.transfer.progress import NullProgress, Progress

__all__ = ["PullResult", "check_destination", "pull_image", "resolve_signed"]

log = logging.getLogger("notar.transfer")

_MANIFEST_TYPES = frozenset(
    {
        MEDIA_TYPE_OCI_INDEX,
        MEDIA_TYPE_DOCKER_MANIFEST_LIST,
        MEDIA_TYPE_OCI_MANIFEST,
        MEDIA_TYPE_DOCKER_MANIFEST,
    }
)
_MAX_DEPTH = 4


@dataclass(frozen=True)
class PullResult:
    image: str
    tag: str
    digest: str
    size: int
    media_type: str
    role: str
    roles: list[str]
    directory: str
    blobs: int
    bytes_downloaded: int

    def to_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "tag": self.tag,
            "digest": self.digest,
            "size": self.size,
            "mediaType": self.media_type,
            "role": self.role,
            "roles": self.roles,
            "directory": self.directory,
            "blobs": self.blobs,
            "bytesDownloaded": self.bytes_downloaded,
        }


def resolve_signed(trust: Repository, tag: str) -> tuple[TargetMatch, TrustedRepo]:
    """The signed target for ``tag`` from freshly verified trust data, or :class:`NotSignedError`."""
    try:
        trusted = trust.refresh()
    except RepositoryNotFoundError as e:
        raise NotSignedError(f"No valid trust data for {tag}: {e}") from e
    match = trusted.resolve(tag)
    return match, trusted


def check_destination(dest: Path, *, force: bool = False) -> None:
    """Refuse a destination that is a file, lacks a parent directory, or is non-empty without ``force``."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise DestinationError(f"{dest} exists and is not a directory")
    if not dest.parent.is_dir():
        raise DestinationError(f"{dest.parent} does not exist")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise DestinationError(f"{dest} is not empty; choose another directory or pass --force to replace it")


class _CountingWriter:
    def __init__(self, f: BinaryIO, key: str, progress: Progress) -> None:
        self._f = f
        self._key = key
        self._progress = progress

    def write(self, data: bytes) -> int:
        n = self._f.write(data)
        self._progress.advance(self._key, len(data))
        return n


class _Staging:
    """A temporary directory beside ``dest``, renamed onto it by :meth:`commit`, else removed."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.path = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))

    def commit(self) -> None:
        old: Path | None = None
        if self.dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", suffix=".old", dir=self.dest.parent))
            os.replace(self.dest, old)  # an empty dir: rename() replaces empty directories on POSIX
        try:
            os.replace(self.path, self.dest)
        except BaseException:
            if old is not None:
                os.replace(old, self.dest)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(OSError):  # make the rename durable
            fd = os.open(self.dest.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def __enter__(self) -> _Staging:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


def _write_manifest(layout: Path, manifest: Manifest) -> None:
    path = blob_path(layout, manifest.digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest.data)


def pull_image(
    source: Reference,
    dest: str | os.PathLike[str],
    *,
    registry: RegistryClient,
    trust: Repository,
    force: bool = False,
    progress: Progress | None = None,
) -> PullResult:
    """Pull the signed image ``source`` (``name:tag``) into a new OCI image layout at ``dest``.

    ``index.json`` names the image ``tag`` (``org.opencontainers.image.ref.name``). Raises
    :class:`~notar.client.NotSignedError` ("No valid trust data for TAG") for an unsigned tag,
    :class:`~notar.transfer.DestinationError` for an unusable ``dest`` (checked before any network
    access), :class:`~notar.registry.RegistryError` (e.g. ``DigestMismatchError``) for registry failures.
    On any failure ``dest`` is as it was.
    """
    if source.tag is None or source.digest is not None:
        raise SourceError(f"{source}: pull needs IMAGE:TAG (a tag, and no digest)")
    if registry.domain != source.domain:
        raise ValueError(f"the registry client is for {registry.domain}, not {source.domain}")
    tag, repo = source.tag, source.path
    target = Path(dest)
    check_destination(target, force=force)
    progress = progress or NullProgress()
    match, trusted = resolve_signed(trust, tag)
    digest = "sha256:" + match.meta.hashes["sha256"].hex()
    roles = [
        r for r in trusted.role_order() if (m := trusted.find(tag, r)) is not None and m.meta == match.meta
    ]
    progress.note(f"{source.name}:{tag} is signed as {digest} ({match.role})")
    top = registry.get_manifest(repo, digest)  # verified against the digest
    if top.size != match.meta.length:
        raise TransferError(
            f"{source.name}@{digest} is {top.size} bytes but the trust data signs {match.meta.length} bytes"
        )
    blobs = 0
    received = 0
    seen: set[str] = set()
    with _Staging(target) as staging:

        def fetch_manifest(manifest: Manifest, depth: int) -> None:
            nonlocal blobs, received
            if depth > _MAX_DEPTH:
                raise TransferError(f"{source.name}@{digest}: indexes nested more than {_MAX_DEPTH} deep")
            _write_manifest(staging.path, manifest)
            for ref in manifest.references():
                if ref.digest in seen:
                    continue
                seen.add(ref.digest)
                if manifest.is_index and ref.media_type in _MANIFEST_TYPES:
                    child = registry.get_manifest(repo, ref.digest)
                    if child.size != ref.size:
                        raise TransferError(
                            f"{source.name}@{ref.digest} is {child.size} bytes, the index says {ref.size}"
                        )
                    fetch_manifest(child, depth + 1)
                else:
                    received += fetch_blob(ref)
                    blobs += 1

        def fetch_blob(ref: Descriptor) -> int:
            path = blob_path(staging.path, ref.digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            progress.start(ref.digest, ref.size, "config" if "config" in ref.media_type else "layer")
            with path.open("wb") as f:
                size = registry.get_blob(
                    repo,
                    ref.digest,
                    cast(BinaryIO, _CountingWriter(f, ref.digest, progress)),
                    expected_size=ref.size,
                )
            progress.finish(ref.digest, "downloaded")
            return size

        fetch_manifest(top, 0)
        write_layout_metadata(staging.path, top.descriptor, tag)
        staging.commit()
    log.debug("pulled %s@%s into %s", source.name, digest, target)
    return PullResult(
        image=f"{source.name}:{tag}",
        tag=tag,
        digest=digest,
        size=top.size,
        media_type=top.media_type,
        role=match.role,
        roles=roles,
        directory=str(target),
        blobs=blobs,
        bytes_downloaded=received,
    )
