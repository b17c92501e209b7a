"""Pull a signed image into an OCI image layout: trust first, then content by digest, all or nothing.

The tag is resolved only through verified trust data (docker's rule: ``targets/releases``, then
``targets``); the registry is asked for that digest, never for the tag. Every manifest and blob is
checked against its digest and size as it arrives. Everything is written into a temporary directory
and moved into place at the end (see :class:`_Staging`), so a failed pull leaves nothing behind.

Foreign / non-distributable layers (Windows base layers) whose descriptors carry ``urls`` are not
downloaded, as ``notar push`` does not upload them when they are absent: the layout then lacks those
blobs, as layouts written by other tools do; runtimes fetch them from their ``urls``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from notar.client import NotSignedError, Repository, RepositoryNotFoundError, TargetMatch, TrustedRepo
from notar.registry import Descriptor, Manifest, Reference, RegistryClient
from notar.registry.manifest import MANIFEST_MEDIA_TYPES, MAX_INDEX_DEPTH, is_nondistributable
from notar.transfer.errors import DestinationError, SourceError, TransferError
from notar.transfer.layout import blob_path, write_layout_metadata
from notar.transfer.progress import NullProgress, Progress

__all__ = ["PullResult", "check_destination", "pull_image", "resolve_signed"]

log = logging.getLogger("notar.transfer")


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
    skipped: list[str] = field(default_factory=list)
    """Digests of foreign / non-distributable layers that were not downloaded."""

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
            "skippedForeignLayers": self.skipped,
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
    """Where a pull writes before the layout is complete; :meth:`commit` puts it in place, else
    leaving the context removes it.

    * ``dest`` absent: a directory beside it, renamed to ``dest`` in one step.
    * ``dest`` an existing empty directory: a hidden directory inside it, whose entries are moved into
      ``dest`` (``blobs``, ``oci-layout``, ``index.json`` last, so the layout is valid only once it is
      complete). ``dest`` keeps its own mode and owner; this works for ``.``, a mount point, or a
      directory whose parent is not writable. If something else appeared in ``dest`` meanwhile, the
      pull fails and leaves it alone.
    * ``dest`` not empty and ``force``: a directory beside it, swapped with ``dest`` at the end (the old
      content is removed only once the new one is in place).

    OS errors while creating or committing become :class:`DestinationError`.
    """

    def __init__(self, dest: Path, *, force: bool = False) -> None:
        self.dest = Path(os.path.abspath(dest))  # noqa: PTH100 - "." and "..", but no symlinks, resolved
        self.shown = dest
        self._replace = False
        if self.dest.is_dir():
            self._replace = force and any(self.dest.iterdir())
        where = self.dest.parent if self._replace or not self.dest.is_dir() else self.dest
        self.path = _make_dir(where, f".{self.dest.name or 'pull'}.", ".partial", shown=dest)

    def commit(self) -> None:
        try:
            if self._replace and self.dest.is_dir():
                self._swap()
            elif os.path.lexists(self.dest):
                self._fill()
            else:
                self._rename()
        except OSError as e:
            raise DestinationError(f"cannot write {self.shown}: {e.strerror or e}") from e
        with contextlib.suppress(OSError):  # make the renames durable
            fd = os.open(self.dest.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _changed(self) -> DestinationError:
        return DestinationError(
            f"{self.shown} is no longer empty (something was written into it during the pull); "
            "left it as it is, pull again into an empty directory or pass --force to replace it"
        )

    def _rename(self) -> None:
        try:
            self.path.rename(self.dest)  # fails if dest appeared meanwhile and is not empty
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise self._changed() from e
            raise

    def _fill(self) -> None:
        if self.dest.is_symlink() or not self.dest.is_dir():
            raise DestinationError(f"{self.shown} exists and is not a directory")
        if any(entry.name != self.path.name for entry in os.scandir(self.dest)):
            raise self._changed()
        moved: list[Path] = []
        names = sorted((p.name for p in self.path.iterdir()), key=lambda n: (n == "index.json", n))
        try:
            for name in names:
                target = self.dest / name
                if os.path.lexists(target):
                    raise self._changed()
                (self.path / name).rename(target)
                moved.append(target)
        except BaseException:
            for target in reversed(moved):  # ours: take them back out, the staging dir goes later
                with contextlib.suppress(OSError):
                    target.rename(self.path / target.name)
            raise
        if self.path.parent == self.dest:
            with contextlib.suppress(OSError):
                self.path.rmdir()

    def _swap(self) -> None:
        old = _make_dir(self.dest.parent, f".{self.dest.name}.", ".old", shown=self.shown)
        os.replace(self.dest, old)  # old is empty: rename() replaces empty directories on POSIX
        try:
            os.replace(self.path, self.dest)
        except BaseException:
            os.replace(old, self.dest)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def __enter__(self) -> _Staging:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if os.path.lexists(self.path):
            shutil.rmtree(self.path, ignore_errors=True)


def _make_dir(parent: Path, prefix: str, suffix: str, *, shown: Path) -> Path:
    """A new directory ``parent/prefix<random>suffix``, with mkdir's mode (0o777 minus the umask, so the
    pulled directory ends up like one made by mkdir; tempfile.mkdtemp would make it 0o700)."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise DestinationError(f"cannot write {shown}: cannot create {path}: {e.strerror or e}") from e
        return path
    raise DestinationError(f"cannot write {shown}: cannot create a temporary directory in {parent}")


def _foreign_layers(manifest: Manifest) -> set[str]:
    """Digests of the non-distributable layers of image ``manifest`` that name ``urls`` to fetch them from."""
    if manifest.is_index:
        return set()
    layers = manifest.json().get("layers")
    out = set()
    for item in layers if isinstance(layers, list) else []:
        if not isinstance(item, dict):
            continue
        media_type, digest, urls = item.get("mediaType"), item.get("digest"), item.get("urls")
        if (
            isinstance(media_type, str)
            and is_nondistributable(media_type)
            and isinstance(digest, str)
            and isinstance(urls, list)
            and urls
        ):
            out.add(digest)
    return out


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
    On any failure ``dest`` is as it was. Foreign / non-distributable layers with ``urls`` are not
    downloaded (``PullResult.skipped``; a note goes to ``progress``).
    """
    if source.tag is None or source.digest is not None:
        raise SourceError(f"{source}: pull needs IMAGE:TAG (a tag, and no digest)")
    if registry.domain != source.domain:
        raise ValueError(f"the registry client is for {registry.domain}, not {source.domain}")
    tag, repo = source.tag, source.path
    target = Path(dest)
    check_destination(target, force=force)
    progress = progress or NullProgress()
    # created before any network access, so that an unusable DIR fails first
    with _Staging(target, force=force) as staging:
        match, trusted = resolve_signed(trust, tag)
        digest = "sha256:" + match.meta.hashes["sha256"].hex()
        roles = [
            r
            for r in trusted.role_order()
            if (m := trusted.find(tag, r)) is not None and m.meta == match.meta
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
        skipped: list[str] = []

        def fetch_manifest(manifest: Manifest, depth: int) -> None:
            nonlocal blobs, received
            if depth > MAX_INDEX_DEPTH:
                raise TransferError(
                    f"{source.name}@{digest}: indexes nested more than {MAX_INDEX_DEPTH} deep"
                )
            _write_manifest(staging.path, manifest)
            foreign = _foreign_layers(manifest)
            for position, ref in enumerate(manifest.references()):
                if ref.digest in seen:
                    continue
                seen.add(ref.digest)
                if position > 0 and ref.digest in foreign:
                    skipped.append(ref.digest)
                    progress.note(
                        f"not downloading foreign layer {ref.digest} ({ref.media_type}, {ref.size} bytes): "
                        "it is fetched from its URLs by whoever runs the image"
                    )
                    continue
                if manifest.is_index and ref.media_type in MANIFEST_MEDIA_TYPES:
                    child = registry.get_manifest(repo, ref.digest)
                    if child.size != ref.size:
                        raise TransferError(
                            f"{source.name}@{ref.digest} is {child.size} bytes, the index says {ref.size}"
                        )
                    fetch_manifest(child, depth + 1)
                else:
                    received += fetch_blob(ref, "layer" if position > 0 or manifest.is_index else "config")
                    blobs += 1

        def fetch_blob(ref: Descriptor, label: str) -> int:
            path = blob_path(staging.path, ref.digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            progress.start(ref.digest, ref.size, label)
            with path.open("wb") as f:
                size = registry.get_blob(
                    repo,
                    ref.digest,
                    cast(BinaryIO, _CountingWriter(f, ref.digest, progress)),
                    expected_size=ref.size,
                )
            progress.finish(ref.digest, "downloaded")
            return size

        try:
            fetch_manifest(top, 0)
            write_layout_metadata(staging.path, top.descriptor, tag)
        except OSError as e:
            raise TransferError(f"cannot write into {staging.path}: {e.strerror or e}") from e
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
        skipped=skipped,
    )
