"""Push an image from disk to a registry and sign it: blobs, manifests by digest, signature, then the tag.

The order is the point: the tag is the last thing written, and only after the trust server has accepted
the signature for exactly the bytes that were pushed. A failure at any step before leaves the registry
without the tag (content pushed by digest is harmless and is reused by the next attempt), so a tag that
clients see is always a signed one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from notar.client import ClientError, Repository
from notar.registry import DEFAULT_CHUNK_SIZE, Descriptor, Reference, RegistryClient, RegistryError
from notar.transfer.errors import PartialPushError, SigningError, SourceError
from notar.transfer.layout import ImageContent
from notar.transfer.progress import NullProgress, Progress
from notar.transfer.sources import ImageSource, collect_image
from notar.tuf import FileMeta

__all__ = ["PushResult", "push_image", "upload_content"]

log = logging.getLogger("notar.transfer")


@dataclass(frozen=True)
class PushResult:
    """What was pushed and signed. ``digest``/``size`` describe the signed (top) manifest."""

    image: str
    tag: str
    digest: str
    size: int
    media_type: str
    roles: list[str]
    manifests: list[str] = field(default_factory=list)
    blobs_uploaded: int = 0
    blobs_existing: int = 0
    bytes_uploaded: int = 0
    initialized: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "tag": self.tag,
            "digest": self.digest,
            "size": self.size,
            "mediaType": self.media_type,
            "roles": self.roles,
            "manifests": self.manifests,
            "blobs": {"uploaded": self.blobs_uploaded, "existing": self.blobs_existing},
            "bytesUploaded": self.bytes_uploaded,
            "initialized": self.initialized,
        }


def _label(descriptor: Descriptor, content: ImageContent) -> str:
    """ "config" for a blob some manifest uses as its config (whatever its media type), else "layer"."""
    return "config" if descriptor.digest in content.configs else "layer"


@dataclass
class _Counts:
    uploaded: int = 0
    existing: int = 0
    bytes: int = 0


def upload_content(
    content: ImageContent,
    source: ImageSource,
    repo: str,
    *,
    registry: RegistryClient,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> tuple[int, int, int]:
    """Upload every blob, then every manifest by digest (children first). Returns
    (blobs uploaded, blobs the registry already had, bytes uploaded). Sets no tag."""
    progress = progress or NullProgress()
    counts = _Counts()
    for blob in content.blobs:
        progress.start(blob.digest, blob.size, _label(blob, content))
        existing = registry.blob_exists(repo, blob.digest)
        if existing == blob.size:
            counts.existing += 1
            progress.finish(blob.digest, "exists")
            continue
        with source.open_blob(blob, on_read=functools.partial(progress.advance, blob.digest)) as stream:
            registry.push_blob(
                repo,
                blob.digest,
                cast(BinaryIO, stream),
                blob.size,
                chunk_size=chunk_size,
                skip_existing=False,
            )
        counts.uploaded += 1
        counts.bytes += blob.size
        progress.finish(blob.digest, "uploaded")
    for manifest in content.manifests:
        d = manifest.descriptor
        registry.put_manifest(repo, d.digest, manifest.data, d.media_type)
        log.debug("pushed manifest %s@%s (%s)", repo, d.digest, d.media_type)
    return counts.uploaded, counts.existing, counts.bytes


def push_image(
    source: ImageSource,
    target: Reference,
    *,
    registry: RegistryClient,
    trust: Repository,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> PushResult:
    """Push ``source`` (an opened :func:`~notar.transfer.open_source`) to ``target`` (``name:tag``) and sign it.

    Steps: check the source's structure (every manifest read and verified, every blob present with
    the right size; see :func:`~notar.transfer.collect_image`); upload the blobs the registry lacks
    (chunked above ``chunk_size``), each verified against its digest while it streams, so a corrupted
    blob is never committed; PUT every manifest by digest; sign the tag with the top manifest's sha256
    and size in the trust server (``trust.sign``, initialising trust data on first use like
    ``docker push``); only then PUT the tag.

    Raises :class:`~notar.transfer.SourceError` for bad input: a malformed source before anything is
    uploaded; a blob whose content does not match its digest when it is read for upload (blobs
    uploaded before it stay in the registry by digest, harmless; nothing is signed or tagged).
    :class:`~notar.registry.RegistryError` for registry failures, :class:`~notar.transfer.SigningError`
    if signing fails (the tag is then not set) and :class:`~notar.transfer.PartialPushError` if the
    tag cannot be set after signing.
    """
    if target.tag is None or target.digest is not None:
        raise SourceError(f"{target}: push needs IMAGE:TAG (a tag, and no digest)")
    if registry.domain != target.domain:
        raise ValueError(f"the registry client is for {registry.domain}, not {target.domain}")
    tag, repo = target.tag, target.path
    progress = progress or NullProgress()
    content = collect_image(source)
    root = content.root
    uploaded, existing, sent = upload_content(
        content, source, repo, registry=registry, chunk_size=chunk_size, progress=progress
    )
    sha256 = hashlib.sha256(root.data).digest()
    digest = "sha256:" + sha256.hex()
    if root.descriptor.digest != digest:  # a non-sha256 top manifest: also store it under its sha256
        registry.put_manifest(repo, digest, root.data, root.descriptor.media_type)
    progress.note(f"Signing {target.name}:{tag} ({digest})")
    try:
        signed = trust.sign({tag: FileMeta(len(root.data), {"sha256": sha256})})
    except ClientError as e:
        raise SigningError(
            f"signing {target.name}:{tag} failed, so the tag was not set "
            f"(the image is in the registry only as {target.name}@{digest}): {e}"
        ) from e
    try:
        registry.put_manifest(repo, tag, root.data, root.descriptor.media_type)
    except RegistryError as e:
        raise PartialPushError(
            f"{target.name}:{tag} is signed ({digest}) but setting the tag in the registry failed; "
            f"push again to finish: {e}"
        ) from e
    return PushResult(
        image=f"{target.name}:{tag}",
        tag=tag,
        digest=digest,
        size=len(root.data),
        media_type=root.descriptor.media_type,
        roles=signed.roles,
        manifests=[m.descriptor.digest for m in content.manifests],
        blobs_uploaded=uploaded,
        blobs_existing=existing,
        bytes_uploaded=sent,
        initialized=signed.initialized,
    )
